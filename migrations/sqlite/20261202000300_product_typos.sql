-- Typo tolerance for the text search (owned by `search::typos`): when no
-- product matches every word of a query, `search::text` falls back to the
-- products whose words are *close* to the query's. Candidates come from an
-- FTS5 `trigram` index over the product's names (title, category, label
-- names), folded as `product_text` is (case, diacritics, ё as е); the final
-- ranking is the same edit-distance check on both engines.
-- The description is left out: it is long, and typos matter in names.
-- It shares `product_text_ids`' rowids with `product_text`, and the
-- triggers of 20261201000101 are made again to keep both in step.
CREATE VIRTUAL TABLE product_trigrams USING fts5(
    product_id UNINDEXED,
    words,
    tokenize = 'trigram remove_diacritics 1'
);

-- How many products hold each trigram: the typo search looks its query's
-- trigrams up here and matches by the rarest only (a common trigram such as
-- "ого" is in a third of the catalog and would make every product a
-- candidate).
CREATE VIRTUAL TABLE product_trigrams_vocab USING fts5vocab(product_trigrams, 'row');

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
END;

CREATE TRIGGER products_text_update
    AFTER UPDATE OF title, description, category, status, labels ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_trigrams
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
END;

CREATE TRIGGER products_text_delete AFTER DELETE ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_trigrams
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_text_ids WHERE product_id = old.product_id;
END;

-- Products stored before this migration.
INSERT INTO product_trigrams (rowid, product_id, words)
    SELECT i.rowid, p.product_id,
           replace(replace(concat_ws(' ', p.title, p.category,
               (SELECT group_concat(json_extract(value, '$.name'), ' ')
                FROM json_each(p.labels))), 'ё', 'е'), 'Ё', 'Е')
    FROM products p JOIN product_text_ids i ON i.product_id = p.product_id
    WHERE p.status <> 'deleted';

-- The text search ranks by FTS5's own `rank` (its fast path for ORDER BY),
-- which is this bm25 with the column weights of `search::text::SQLITE_BM25`:
-- product_id 0, title 10, description 1, category 4, labels 0.5.
INSERT INTO product_text (product_text, rank) VALUES ('rank', 'bm25(0.0, 10.0, 1.0, 4.0, 0.5)');
