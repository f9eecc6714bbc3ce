//! The shopper page (`/`: browse the catalog, search by photo, filter by
//! category and price) and a product's page (`/products/{id}`: the product
//! and its similar products). Every catalog value goes through maud, which
//! escapes it; the photo search renders its results in `shop.js` with
//! `textContent`, never as HTML.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::{PAGE_SIZE, WebState};
use crate::{
    catalog::{ProductRow, ProductStatus},
    search::{SearchError, SearchParams, SearchResult},
};

/// The most products the browse grid shows at once ("more" adds a page).
const MAX_SHOWN: usize = 480;
/// Similar products on a product's page.
const SIMILAR: usize = 12;

/// The page shell: own stylesheet and script only.
pub(crate) fn layout(title: &str, script: Option<&str>, body: Markup) -> Markup {
    let scripts: Vec<&str> = script.into_iter().collect();
    layout_with(title, &scripts, &[], body)
}

/// [`layout`] with several scripts (in order) and extra stylesheets, all
/// under `/assets/`.
pub(crate) fn layout_with(title: &str, scripts: &[&str], styles: &[&str], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                @for s in styles { link rel="stylesheet" href={ "/assets/" (s) }; }
                link rel="stylesheet" href="/assets/vitrine.css";
                @for s in scripts {
                    script src={ "/assets/" (s) } defer {}
                }
            }
            body {
                header.top {
                    a.brand href="/" { "Vitrine" }
                    span.tagline { "find products that look like this" }
                }
                main { (body) }
            }
        }
    }
}

/// Filters as the page's form sends them: every field text, so that a bad
/// value is shown back as a message instead of a bare 400.
#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    /// Words to search for (text search); empty or absent browses.
    q: Option<String>,
    category: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    /// How many products to show (grows by a page with "more").
    n: Option<usize>,
}

struct Filters {
    category: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    problem: Option<String>,
}

fn price(field: &str, v: &Option<String>, problem: &mut Option<String>) -> Option<f64> {
    let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    match v.parse::<f64>() {
        Ok(p) if p.is_finite() => Some(p),
        _ => {
            *problem = Some(format!("{field} must be a number"));
            None
        }
    }
}

impl HomeQuery {
    fn filters(&self) -> Filters {
        let mut problem = None;
        let min_price = price("The lowest price", &self.min_price, &mut problem);
        let max_price = price("The highest price", &self.max_price, &mut problem);
        let (min_price, max_price) = match (min_price, max_price) {
            (Some(lo), Some(hi)) if lo > hi => {
                problem = Some("The lowest price is above the highest".into());
                (None, None)
            }
            pair => pair,
        };
        Filters {
            category: self.category.clone().filter(|c| !c.is_empty()),
            min_price,
            max_price,
            problem,
        }
    }
}

fn money(price: Option<f64>, currency: Option<&str>) -> String {
    match price {
        Some(p) => format!("{p:.2} {}", currency.unwrap_or(""))
            .trim_end()
            .to_string(),
        None => String::new(),
    }
}

fn thumb_url(id: &str) -> String {
    format!("/api/v1/products/{}/thumbnail", urlencode(id))
}

fn product_url(id: &str) -> String {
    format!("/products/{}", urlencode(id))
}

/// Percent-encodes a path segment (product ids are the marketplace's).
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What a card of the grid shows.
struct Card {
    id: String,
    title: Option<String>,
    price: String,
    /// A similarity to show as "match N%"; text relevance is not one.
    score: Option<f32>,
}

impl From<SearchResult> for Card {
    fn from(r: SearchResult) -> Self {
        Card {
            price: money(r.price, r.currency.as_deref()),
            id: r.product_id,
            title: r.title,
            score: None,
        }
    }
}

/// One card of the grid; `anchor` marks where a "more" page starts.
fn card(
    id: &str,
    title: Option<&str>,
    price: String,
    score: Option<f32>,
    anchor: Option<usize>,
) -> Markup {
    let title = title.unwrap_or(id);
    html! {
        a.card href=(product_url(id)) id=[anchor.map(|i| format!("item-{i}"))] {
            img src=(thumb_url(id)) alt=(title) loading="lazy" width="160" height="160";
            span.title { (title) }
            span.price { (price) }
            @if let Some(s) = score { span.score { "match " (format!("{:.0}%", s * 100.0)) } }
        }
    }
}

fn filter_form(categories: &[String], f: &Filters, q: &HomeQuery) -> Markup {
    html! {
        form #filters.filters method="get" action="/" {
            label.words { "Words "
                input #q name="q" type="search" value=[q.q.as_deref()] maxlength="256"
                    placeholder="red leather bag" autocomplete="off";
            }
            label { "Category "
                select name="category" {
                    option value="" { "All" }
                    @for c in categories {
                        option value=(c) selected[f.category.as_deref() == Some(c.as_str())] { (c) }
                    }
                }
            }
            label { "Price from "
                input name="min_price" type="number" min="0" step="any" inputmode="decimal"
                    value=[q.min_price.as_deref()] placeholder="any";
            }
            label { "to "
                input name="max_price" type="number" min="0" step="any" inputmode="decimal"
                    value=[q.max_price.as_deref()] placeholder="any";
            }
            button type="submit" { "Apply" }
        }
    }
}

/// `GET /`: the catalog, newest first, filtered; the photo search on top.
pub async fn home(State(st): State<WebState>, Query(q): Query<HomeQuery>) -> Response {
    let f = q.filters();
    let shown = q.n.unwrap_or(PAGE_SIZE).clamp(PAGE_SIZE, MAX_SHOWN);
    let categories = match st.products.categories().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "shopper page: the catalog cannot be read");
            return unavailable();
        }
    };
    let words = q.q.as_deref().map(str::trim).filter(|w| !w.is_empty());
    let mut problem = f.problem.clone();
    // The cards: the text search's results when there are words, else the
    // catalog, newest first.
    let (cards, has_more, shown) = if let Some(words) = words {
        // Text search pages are at most 100 long (`search::MAX_LIMIT`).
        let shown = shown.min(100);
        let params = SearchParams {
            limit: Some(shown),
            category: f.category.iter().cloned().collect(),
            min_price: f.min_price,
            max_price: f.max_price,
            ..SearchParams::default()
        };
        match st.search.text(words, &params).await {
            Ok(page) => {
                let more = page.next_offset.is_some() && shown < 100;
                let cards: Vec<Card> = page.results.into_iter().map(Card::from).collect();
                (cards, more, shown)
            }
            Err(SearchError::InvalidQuery(why) | SearchError::InvalidFilter(why)) => {
                problem = Some(why);
                (Vec::new(), false, shown)
            }
            Err(e) => {
                tracing::error!(error = %e, "shopper page: text search failed");
                return unavailable();
            }
        }
    } else {
        // One more than shown, to know whether "more" has anything to add.
        let rows = st
            .products
            .browse(
                f.category.as_deref(),
                f.min_price,
                f.max_price,
                0,
                shown as i64 + 1,
            )
            .await;
        let mut rows = match rows {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "shopper page: the catalog cannot be read");
                return unavailable();
            }
        };
        let has_more = rows.len() > shown;
        rows.truncate(shown);
        let cards = rows
            .into_iter()
            .map(|p| Card {
                price: money(p.price, p.currency.as_deref()),
                id: p.product_id,
                title: p.title,
                score: None,
            })
            .collect();
        (cards, has_more, shown)
    };
    let more_href = {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", words.map(str::to_string)),
            ("category", f.category.clone()),
            ("min_price", q.min_price.clone()),
            ("max_price", q.max_price.clone()),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                s.append_pair(k, &v);
            }
        }
        s.append_pair("n", &(shown + PAGE_SIZE).to_string());
        format!("/?{}#item-{shown}", s.finish())
    };
    let body = html! {
        section.search {
            div.pick {
            form #photo.drop method="post" enctype="multipart/form-data" {
                label.dropzone for="photo-file" {
                    img #photo-preview alt="" hidden;
                    span { "Drop a photo here, or " u { "choose one" } }
                    input #photo-file type="file" name="image" accept="image/*";
                }
            }
            form #by-url.by-url {
                label { "or paste an image's address "
                    input #photo-url type="url" name="url" placeholder="the picture’s web address" required;
                }
                button type="submit" { "Search" }
            }
            }
            (filter_form(&categories, &f, &q))
            @if let Some(p) = &problem { p.problem role="alert" { (p) } }
            p #status.status role="status" aria-live="polite" {}
        }
        section.results {
            h2 #results-title {
                @if let Some(w) = words { "Products matching “" (w) "”" }
                @else if cards.is_empty() { "No products yet" }
                @else { "The catalog" }
            }
            @if cards.is_empty() {
                @if words.is_some() { p.empty { "No product has these words. Try fewer, or a photo." } }
                @else { p.empty { "Nothing is indexed that matches. Products appear here once their images are embedded." } }
            }
            div #grid.grid {
                @for (i, c) in cards.iter().enumerate() {
                    (card(&c.id, c.title.as_deref(), c.price.clone(),
                        c.score, (i > 0 && i % PAGE_SIZE == 0).then_some(i)))
                }
            }
            @if has_more { a #more.more href=(more_href) { "More" } }
            button #more-results.more type="button" hidden { "More" }
        }
    };
    layout(
        "Vitrine: find products that look like this",
        Some("shop.js"),
        body,
    )
    .into_response()
}

fn unavailable() -> Response {
    let body =
        html! { p.problem { "The catalog cannot be read right now. Try again in a moment." } };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        layout("Vitrine: unavailable", None, body),
    )
        .into_response()
}

fn product_facts(p: &ProductRow) -> Markup {
    // What the classifier sees in its photo (null before it is embedded).
    let labels: Vec<crate::embed::Label> = p
        .labels
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    html! {
        div.product {
            img.big src=(thumb_url(&p.product_id)) alt=(p.title.as_deref().unwrap_or(&p.product_id)) width="320" height="320";
            div.facts {
                h1 { (p.title.as_deref().unwrap_or(&p.product_id)) }
                p.price { (money(p.price, p.currency.as_deref())) }
                @if let Some(c) = &p.category {
                    p { "Category: " a href={ "/?category=" (urlencode(c)) } { (c) } }
                }
                @if let Some(d) = &p.description { p.description { (d) } }
                @if !labels.is_empty() {
                    p.labels { "In the photo: "
                        @for (i, l) in labels.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/?q=" (urlencode(&l.name)) } title={ (format!("{:.0}%", l.score * 100.0)) } { (l.name) }
                        }
                    }
                }
                @if p.status != ProductStatus::Indexed {
                    p.problem { "Not searchable yet: " (p.status.as_str())
                        @if let Some(e) = &p.error { " (" (e) ")" } }
                }
            }
        }
    }
}

/// `GET /products/{id}`: the product and the products that look like it.
pub async fn product(State(st): State<WebState>, Path(id): Path<String>) -> Response {
    let row = match st.products.get(&id).await {
        Ok(Some(p)) if p.status != ProductStatus::Deleted => p,
        Ok(_) => {
            let body = html! {
                h1 { "No such product" }
                p { "Nothing is known as " q { (id) } ". " a href="/" { "Back to the catalog" } }
            };
            return (
                StatusCode::NOT_FOUND,
                layout("Vitrine: not found", None, body),
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "product page: the catalog cannot be read");
            return unavailable();
        }
    };
    let params = SearchParams {
        limit: Some(SIMILAR),
        ..SearchParams::default()
    };
    let similar: Result<Vec<SearchResult>, String> = match st.search.similar_to(&id, &params).await
    {
        Ok(page) => Ok(page.results),
        Err(SearchError::NotIndexed(_)) => {
            Err("Similar products appear once this one is indexed.".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "product page: similar products failed");
            Err("Similar products cannot be found right now.".into())
        }
    };
    let title = row.title.clone().unwrap_or_else(|| row.product_id.clone());
    let body = html! {
        p.back { a href="/" { "← The catalog" } }
        (product_facts(&row))
        section.results {
            h2 { "Similar products" }
            @match &similar {
                Ok(list) if list.is_empty() => { p.empty { "Nothing similar yet." } }
                Ok(list) => {
                    div #grid.grid {
                        @for r in list {
                            (card(&r.product_id, r.title.as_deref(), money(r.price, r.currency.as_deref()), Some(r.score), None))
                        }
                    }
                }
                Err(why) => { p.empty { (why) } }
            }
        }
    };
    layout(&format!("{title} · Vitrine"), Some("shop.js"), body).into_response()
}
