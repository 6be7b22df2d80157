-- Incremental unindexed-blob check (issue 15): what full verify's last listing of a filesystem
-- store saw of each fan-out directory ('' = sha256/, 'ab', 'ab/cd'). A directory whose stamp
-- (inode, mtime and ctime in ns) is unchanged since then is not listed again; its blobs that were
-- unindexed then are re-checked against the index. stamp is NULL when the directory changed
-- within the racy window of that listing (it is listed again next time). Rows are a cache:
-- deleting them makes the next full verify list every directory.
CREATE TABLE IF NOT EXISTS verify_store_dirs (
  store     text NOT NULL,
  dir       text NOT NULL,
  stamp     text,
  unindexed text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (store, dir)
);
