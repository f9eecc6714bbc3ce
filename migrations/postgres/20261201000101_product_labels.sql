-- PostgreSQL twin of migrations/sqlite/20261201000101. Keep them equivalent.
-- Labels: the classifier head's top-k class names with scores, given to
-- each product at ingest (`catalog::sync`), as JSON
-- `[{"name": "teapot", "score": 0.83}, …]`; NULL until its image is embedded
-- by a model with a classifier head (or backfilled by `vitrine reindex`).
-- TEXT, not json: sqlx's `Any` driver reads TEXT on both engines.
ALTER TABLE products ADD COLUMN labels TEXT;

-- The text document gains the label names (weight D), so that "teapot"
-- finds a teapot titled "Чайник заварочный".
CREATE FUNCTION product_search_document(title TEXT, description TEXT, category TEXT, labels TEXT)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT product_search_document(title, description, category)
        || setweight(to_tsvector('simple', coalesce(
               (SELECT string_agg(x ->> 'name', ' ') FROM json_array_elements(labels::json) x),
               '')), 'D')
$$;

CREATE OR REPLACE FUNCTION products_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'deleted' THEN
        DELETE FROM product_search WHERE product_id = NEW.product_id;
    ELSE
        INSERT INTO product_search (product_id, document)
        VALUES (NEW.product_id,
                product_search_document(NEW.title, NEW.description, NEW.category, NEW.labels))
        ON CONFLICT (product_id) DO UPDATE SET document = excluded.document;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER products_search_sync ON products;
CREATE TRIGGER products_search_sync
    AFTER INSERT OR UPDATE OF title, description, category, status, labels ON products
    FOR EACH ROW EXECUTE FUNCTION products_search_sync();
