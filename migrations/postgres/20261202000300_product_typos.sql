-- PostgreSQL twin of migrations/sqlite/20261202000300. Keep them equivalent.
-- Typo tolerance for the text search (owned by `search::typos`): when no
-- product matches every word of a query, `search::text` falls back to the
-- products whose words are *close* to the query's. Candidates come from a
-- pg_trgm GIN index over the product's names (title, category, label
-- names), folded as the tsvector is (unaccent, lower-case); the final
-- ranking is the same edit-distance check on both engines.
-- The description is left out: it is long, and typos matter in names.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE product_search ADD COLUMN words TEXT NOT NULL DEFAULT '';

CREATE FUNCTION product_search_words(title TEXT, category TEXT, labels TEXT)
RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT lower(unaccent(concat_ws(' ', title, category,
        (SELECT string_agg(x ->> 'name', ' ') FROM json_array_elements(labels::json) x))))
$$;

CREATE OR REPLACE FUNCTION products_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'deleted' THEN
        DELETE FROM product_search WHERE product_id = NEW.product_id;
    ELSE
        INSERT INTO product_search (product_id, document, words)
        VALUES (NEW.product_id,
                product_search_document(NEW.title, NEW.description, NEW.category, NEW.labels),
                product_search_words(NEW.title, NEW.category, NEW.labels))
        ON CONFLICT (product_id) DO UPDATE
            SET document = excluded.document, words = excluded.words;
    END IF;
    RETURN NULL;
END
$$;

-- Products stored before this migration.
UPDATE product_search s SET words = product_search_words(p.title, p.category, p.labels)
    FROM products p WHERE p.product_id = s.product_id;

CREATE INDEX product_search_words ON product_search USING GIN (words gin_trgm_ops);
