//! Kommo's webhook body: `application/x-www-form-urlencoded` pairs with
//! PHP-style nested keys (`leads[status][0][custom_fields][0][values][0][value]`),
//! decoded into a tree ([`Node`]).
//!
//! Pure functions, no I/O, so the fuzz target and the property tests can
//! drive them directly. The percent-decoding is `form_urlencoded`'s (the
//! `url` crate's, WHATWG rules: `+` is a space, bad escapes pass through,
//! invalid UTF-8 becomes U+FFFD); only the bracket nesting is ours, since no
//! well-kept crate decodes PHP's nesting into an untyped tree
//! (`serde_qs` wants a target type and rejects what it does not know,
//! while unknown keys must be kept).
//!
//! The rules, PHP's where they are well defined:
//! - `a[b][c]=v` sets `a → b → c = v`; a key without brackets is a
//!   top-level field;
//! - a key that does not have the bracket shape (`a[b`, `a]b`, `a[b]c`) is
//!   kept whole as a top-level field, never refused;
//! - a repeated key keeps the last value (as PHP does);
//! - a key that is both a value and a parent (`a=1&a[b]=2`) is refused: no
//!   reading of it is right, and Kommo never sends one;
//! - at most [`MAX_DEPTH`] levels, so a hostile key cannot build a deep tree.

use std::collections::BTreeMap;

/// The deepest nesting accepted. Kommo's deepest key has six levels
/// (`contacts[add][0][custom_fields][0][values][0][value]` is seven
/// segments); 32 leaves room for what it may add.
pub const MAX_DEPTH: usize = 32;

/// One node of a decoded body: a value, or a map of named children (list
/// indices are names too: `"0"`, `"1"`, … in numeric order when read with
/// [`Node::items`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Value(String),
    Map(BTreeMap<String, Node>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form key `{0}` is both a value and a parent of other keys")]
    Conflict(String),
    #[error("form key `{0}` is nested deeper than {MAX_DEPTH} levels")]
    TooDeep(String),
}

impl Node {
    pub fn empty() -> Self {
        Node::Map(BTreeMap::new())
    }

    /// The child named `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.get(key),
            Node::Value(_) => None,
        }
    }

    /// The child at a path of names.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The text of a value node.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Value(v) => Some(v),
            Node::Map(_) => None,
        }
    }

    /// The text of the value at `path`.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Node::as_str)
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Node>> {
        match self {
            Node::Map(m) => Some(m),
            Node::Value(_) => None,
        }
    }

    /// A map's children in list order: numeric names by number first, then
    /// the others by name (a map's own order is by name, so `"10"` would
    /// come before `"2"`).
    pub fn items(&self) -> Vec<(&str, &Node)> {
        let mut v: Vec<(&str, &Node)> = self
            .as_map()
            .map(|m| m.iter().map(|(k, n)| (k.as_str(), n)).collect())
            .unwrap_or_default();
        v.sort_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.to_string()));
        v
    }

    /// As JSON: maps become objects, values strings (Kommo sends every value
    /// as text; the rule engine types the fields it knows).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Value(v) => serde_json::Value::String(v.clone()),
            Node::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, n)| (k.clone(), n.to_json())).collect())
            }
        }
    }

    /// From JSON shaped like a decoded form (the docs draw deliveries so):
    /// objects become maps, arrays maps keyed by index, scalars values
    /// (`null` becomes an empty value).
    pub fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        match v {
            J::Object(o) => Node::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
            J::Array(a) => Node::Map(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), Node::from_json(v)))
                    .collect(),
            ),
            J::String(s) => Node::Value(s.clone()),
            J::Null => Node::Value(String::new()),
            other => Node::Value(other.to_string()),
        }
    }
}

/// The body's pairs, percent-decoded, in order.
pub fn pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Splits `a[b][c]` into `["a", "b", "c"]`; `None` when the key does not
/// have that shape (it is then kept whole).
fn segments(key: &str) -> Option<Vec<&str>> {
    let Some(open) = key.find('[') else {
        return (!key.contains(']')).then(|| vec![key]);
    };
    let head = &key[..open];
    if head.contains(']') {
        return None;
    }
    let mut out = vec![head];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let seg = &inner[..close];
        if seg.contains('[') {
            return None;
        }
        out.push(seg);
        rest = &inner[close + 1..];
    }
    Some(out)
}

/// Decodes a body into its tree. Never panics; refuses only what
/// [`FormError`] lists.
pub fn decode(body: &[u8]) -> Result<Node, FormError> {
    let mut root = BTreeMap::new();
    for (key, value) in pairs(body) {
        let path = segments(&key).unwrap_or_else(|| vec![key.as_str()]);
        if path.len() > MAX_DEPTH {
            return Err(FormError::TooDeep(key));
        }
        insert(&mut root, &path, value).map_err(|()| FormError::Conflict(key.clone()))?;
    }
    Ok(Node::Map(root))
}

fn insert(map: &mut BTreeMap<String, Node>, path: &[&str], value: String) -> Result<(), ()> {
    let (first, rest) = path.split_first().expect("a key has at least one segment");
    if rest.is_empty() {
        return match map.get(*first) {
            Some(Node::Map(_)) => Err(()),
            _ => {
                map.insert((*first).to_string(), Node::Value(value));
                Ok(())
            }
        };
    }
    match map.entry((*first).to_string()).or_insert_with(Node::empty) {
        Node::Map(child) => insert(child, rest, value),
        Node::Value(_) => Err(()),
    }
}

/// Encodes a tree as a form body: the inverse of [`decode`] for every tree
/// whose names hold no `[` or `]` and whose maps (below the root) are not
/// empty. The tests and the fixtures drawn as JSON use it.
pub fn encode(root: &Node) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Node::Map(m) = root {
        for (k, n) in m {
            emit(&mut out, k.clone(), n);
        }
    }
    out.finish()
}

fn emit(out: &mut form_urlencoded::Serializer<'_, String>, key: String, node: &Node) {
    match node {
        Node::Value(v) => {
            out.append_pair(&key, v);
        }
        Node::Map(m) => {
            for (k, n) in m {
                emit(out, format!("{key}[{k}]"), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn value(s: &str) -> Node {
        Node::Value(s.into())
    }

    #[test]
    fn nested_keys_build_a_tree() {
        let t =
            decode(b"leads%5Bstatus%5D%5B0%5D%5Bid%5D=7&leads[status][0][name]=a+b&account[id]=1")
                .unwrap();
        assert_eq!(t.str_at(&["leads", "status", "0", "id"]), Some("7"));
        assert_eq!(t.str_at(&["leads", "status", "0", "name"]), Some("a b"));
        assert_eq!(t.str_at(&["account", "id"]), Some("1"));
    }

    #[test]
    fn odd_keys_are_kept_whole_and_repeats_keep_the_last() {
        let t = decode(b"a[b=1&c]d=2&e[f]g=3&x=1&x=2&=empty").unwrap();
        assert_eq!(t.get("a[b"), Some(&value("1")));
        assert_eq!(t.get("c]d"), Some(&value("2")));
        assert_eq!(t.get("e[f]g"), Some(&value("3")));
        assert_eq!(t.get("x"), Some(&value("2")));
        assert_eq!(t.get(""), Some(&value("empty")));
    }

    #[test]
    fn conflicts_and_depth_are_refused() {
        assert!(matches!(decode(b"a=1&a[b]=2"), Err(FormError::Conflict(_))));
        assert!(matches!(decode(b"a[b]=2&a=1"), Err(FormError::Conflict(_))));
        let deep = format!("a{}=1", "[x]".repeat(MAX_DEPTH));
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(FormError::TooDeep(_))
        ));
        let ok = format!("a{}=1", "[x]".repeat(MAX_DEPTH - 1));
        assert!(decode(ok.as_bytes()).is_ok());
    }

    #[test]
    fn items_are_in_numeric_order() {
        let t = decode(b"l[10]=c&l[2]=b&l[0]=a&l[z]=d").unwrap();
        let order: Vec<&str> = t
            .get("l")
            .unwrap()
            .items()
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(order, ["0", "2", "10", "z"]);
    }

    fn name() -> impl Strategy<Value = String> {
        // Anything but the brackets, which name the nesting.
        "[^\\[\\]]{0,8}"
    }

    fn tree() -> impl Strategy<Value = Node> {
        let leaf = ".{0,12}".prop_map(Node::Value);
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop::collection::btree_map(name(), inner, 1..6).prop_map(Node::Map)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&body);
        }

        #[test]
        fn arbitrary_keys_never_panic(keys in prop::collection::vec("[a-z\\[\\]=&%+0-9]{0,24}", 0..16)) {
            let _ = decode(keys.join("&").as_bytes());
        }

        #[test]
        fn decoding_an_encoded_tree_returns_it(root in prop::collection::btree_map(name(), tree(), 0..6)) {
            let root = Node::Map(root);
            let body = encode(&root);
            prop_assert_eq!(decode(body.as_bytes()), Ok(root));
        }
    }
}
