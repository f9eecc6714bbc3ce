-- The titles alone, for the first tier of the text search (`search::text`:
-- the products whose title holds every word, ranked first). On
-- `product_text`, `{title} : (…)` walks the postings of every column and
-- scores all five with bm25: ranking the ~4,000 title matches of a word that
-- is also in many descriptions and labels took 12 ms at 100,000 products,
-- against 8 ms on a table of titles (sqlite3, BENCHMARKS.md §7). Folded as
-- `product_text` is (case, diacritics, ё as е), sharing its rowids from
-- `product_text_ids`; the triggers of 20261202000300 are made again to keep
-- all three tables in step with `products`.
CREATE VIRTUAL TABLE product_titles USING fts5(
    product_id UNINDEXED,
    title,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

DROP TRIGGER products_text_insert;
DROP TRIGGER products_text_update;
DROP TRIGGER products_text_delete;

CREATE TRIGGER products_text_insert AFTER INSERT ON products
BEGIN
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category, labels)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е'),
               (SELECT group_concat(json_extract(value, '$.name'), ' ') FROM json_each(new.labels))
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
    INSERT INTO product_trigrams (rowid, product_id, words)
        SELECT i.rowid, new.product_id,
               replace(replace(concat_ws(' ', new.title, new.category,
                   (SELECT group_concat(json_extract(value, '$.name'), ' ')
                    FROM json_each(new.labels))), 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
    INSERT INTO product_titles (rowid, product_id, title)
        SELECT i.rowid, new.product_id, replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_update
    AFTER UPDATE OF title, description, category, status, labels ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_trigrams
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_titles
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category, labels)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е'),
               (SELECT group_concat(json_extract(value, '$.name'), ' ') FROM json_each(new.labels))
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
    INSERT INTO product_trigrams (rowid, product_id, words)
        SELECT i.rowid, new.product_id,
               replace(replace(concat_ws(' ', new.title, new.category,
                   (SELECT group_concat(json_extract(value, '$.name'), ' ')
                    FROM json_each(new.labels))), 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
    INSERT INTO product_titles (rowid, product_id, title)
        SELECT i.rowid, new.product_id, replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_delete AFTER DELETE ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_trigrams
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_titles
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_text_ids WHERE product_id = old.product_id;
END;

-- Products stored before this migration.
INSERT INTO product_titles (rowid, product_id, title)
    SELECT i.rowid, p.product_id, replace(replace(p.title, 'ё', 'е'), 'Ё', 'Е')
    FROM products p JOIN product_text_ids i ON i.product_id = p.product_id
    WHERE p.status <> 'deleted';
