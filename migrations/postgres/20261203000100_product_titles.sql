-- PostgreSQL twin of migrations/sqlite/20261203000100. Keep them equivalent.
-- The titles alone, for the first tier of the text search (`search::text`:
-- the products whose title holds every word, ranked first). Matching
-- weight A of `document` (`'word':*A`) takes every product with the word
-- anywhere from the GIN index and rechecks its weights: a word that is also
-- in many descriptions made the title tier as slow as ranking them all. Its
-- own tsvector, with its own GIN index, holds only the titles' words.
ALTER TABLE product_search ADD COLUMN title_document tsvector NOT NULL DEFAULT ''::tsvector;

CREATE FUNCTION product_search_title(title TEXT)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT to_tsvector('simple', unaccent(coalesce(title, '')))
$$;

CREATE OR REPLACE FUNCTION products_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'deleted' THEN
        DELETE FROM product_search WHERE product_id = NEW.product_id;
    ELSE
        INSERT INTO product_search (product_id, document, words, title_document)
        VALUES (NEW.product_id,
                product_search_document(NEW.title, NEW.description, NEW.category, NEW.labels),
                product_search_words(NEW.title, NEW.category, NEW.labels),
                product_search_title(NEW.title))
        ON CONFLICT (product_id) DO UPDATE
            SET document = excluded.document, words = excluded.words,
                title_document = excluded.title_document;
    END IF;
    RETURN NULL;
END
$$;

-- Products stored before this migration.
UPDATE product_search s SET title_document = product_search_title(p.title)
    FROM products p WHERE p.product_id = s.product_id;

CREATE INDEX product_search_title_document ON product_search USING GIN (title_document);
