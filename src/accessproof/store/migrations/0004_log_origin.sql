-- The ledger's log origin is named once, when the store is made, under the migration lock: two processes
-- opening a new store at once must not each name the log (checkpoints signed for one name would not
-- verify under the other). 64 random bits from PostgreSQL's CSPRNG, as the embedded store draws them.

INSERT INTO ledger_meta (key, value)
SELECT 'origin', 'accessproof.local/' || left(replace(gen_random_uuid()::text, '-', ''), 12)
                 || right(replace(gen_random_uuid()::text, '-', ''), 4)
ON CONFLICT (key) DO NOTHING;
