-- PostgreSQL twin of migrations/sqlite/20261201000100. Keep them equivalent.
-- Text search over the catalog (owned by `search::text`): a tsvector of
-- each product's title (weight A), category (B) and description (C) with a
-- GIN index, kept in step with the `products` row by a trigger, so every
-- write path updates it in the same transaction.
--
-- The `simple` configuration (no stemming, no stop words) treats Russian,
-- Kyrgyz and English alike; prefix matching (`word:*`) stands in for
-- stemming. `unaccent` folds diacritics (café = cafe, ё = е) and `simple`
-- lower-cases (Cyrillic too, in a UTF-8 locale such as C.UTF-8).
-- Deleted products (tombstones) have no row: they are not in the catalog.
-- The document lives in its own table because sqlx's `Any` driver cannot
-- decode a tsvector column, and `SELECT * FROM products` must keep working.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE product_search (
    product_id  TEXT     PRIMARY KEY REFERENCES products (product_id) ON DELETE CASCADE,
    document    tsvector NOT NULL
);

CREATE INDEX product_search_document ON product_search USING GIN (document);

CREATE FUNCTION product_search_document(title TEXT, description TEXT, category TEXT)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT setweight(to_tsvector('simple', unaccent(coalesce(title, ''))), 'A')
        || setweight(to_tsvector('simple', unaccent(coalesce(category, ''))), 'B')
        || setweight(to_tsvector('simple', unaccent(coalesce(description, ''))), 'C')
$$;

CREATE FUNCTION products_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'deleted' THEN
        DELETE FROM product_search WHERE product_id = NEW.product_id;
    ELSE
        INSERT INTO product_search (product_id, document)
        VALUES (NEW.product_id,
                product_search_document(NEW.title, NEW.description, NEW.category))
        ON CONFLICT (product_id) DO UPDATE SET document = excluded.document;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_search_sync
    AFTER INSERT OR UPDATE OF title, description, category, status ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_sync();

-- Products stored before this migration.
INSERT INTO product_search (product_id, document)
    SELECT product_id, product_search_document(title, description, category)
    FROM products WHERE status <> 'deleted';

-- Filters of the text search.
CREATE INDEX products_category ON products (category);
