//! The database schema and the settings every connection runs with.
//!
//! One row per datastore, import job, image set and image set version; one
//! row per frame an image set lists. The columns search filters and sorts on
//! live in `image_sets` (the latest version's values), with one partial
//! index per filter and sort field over the image sets that are not deleted,
//! so that every search page is an index range walked from its cursor.
//! Datastores are referred to by their creation sequence number inside the
//! image set rows, and image sets by their rowid inside versions and frames:
//! index entries stay small, which matters at a million image sets.
//!
//! A running import job records what each committed image set received in
//! `job_outcomes` (and how far it got in `jobs.progress`), so a job
//! interrupted by a crash resumes after its last committed image set and
//! still writes complete outputs.
//!
//! The schema's version is `PRAGMA user_version`; a database from a newer
//! emulator is refused rather than misread, and one from an older emulator
//! is brought up to date at open ([`MIGRATIONS`]).

use rusqlite::Connection;

/// The schema version this emulator writes.
pub const VERSION: i64 = 2;

/// What identifies a database as this emulator's store (`PRAGMA application_id`).
pub const APPLICATION_ID: i64 = 0x4849_4d45; // "HIME"

/// The tables and indexes.
const TABLES: &str = r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE datastores (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kms_key_arn TEXT,
    lambda_authorizer_arn TEXT,
    lossless_format TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    delete_requested_at INTEGER,
    tags TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE client_tokens (
    kind TEXT NOT NULL,
    token TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (kind, token)
) WITHOUT ROWID;

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    datastore_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    input_s3_uri TEXT NOT NULL,
    output_s3_uri TEXT NOT NULL,
    input_owner TEXT,
    import_configuration TEXT,
    submitted_at INTEGER NOT NULL,
    ended_at INTEGER,
    message TEXT,
    progress TEXT
) WITHOUT ROWID;
CREATE INDEX jobs_by_datastore ON jobs (datastore_id, seq);

CREATE TABLE job_outcomes (
    job_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    kind TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, n)
) WITHOUT ROWID;

CREATE TABLE image_sets (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    datastore INTEGER NOT NULL,
    is_primary INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    latest_version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    lock_until INTEGER,
    lock_status TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    patient_id TEXT,
    accession_number TEXT,
    study_id TEXT,
    study_uid TEXT,
    series_uid TEXT,
    study_date_time TEXT NOT NULL DEFAULT '',
    last_accessed_at INTEGER
);

CREATE TABLE versions (
    image_set INTEGER NOT NULL,
    version_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    workflow_status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    message TEXT,
    forced INTEGER NOT NULL,
    tags TEXT,
    metadata_blob TEXT,
    PRIMARY KEY (image_set, version_id)
) WITHOUT ROWID;
CREATE INDEX versions_by_blob ON versions (metadata_blob);

CREATE TABLE frames (
    image_set INTEGER NOT NULL,
    frame_id TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (image_set, frame_id)
) WITHOUT ROWID;
CREATE INDEX frames_by_blob ON frames (blob);
"#;

/// The search columns: every EQUAL attribute (and `is_primary`) by every
/// sort field, and every sort field alone.
pub const SORT_COLUMNS: [&str; 3] = ["updated_at", "created_at", "study_date_time"];
/// The columns an EQUAL filter matches.
pub const EQUAL_COLUMNS: [&str; 6] = [
    "patient_id",
    "accession_number",
    "study_id",
    "study_uid",
    "series_uid",
    "is_primary",
];

/// The name of the index over `equal` (or none) ordered by `sort`.
pub fn index_name(equal: Option<&str>, sort: &str) -> String {
    match equal {
        Some(column) => format!("search_{column}_{sort}"),
        None => format!("search_{sort}"),
    }
}

fn search_indexes() -> String {
    let mut sql = String::new();
    for sort in SORT_COLUMNS {
        sql.push_str(&format!(
            "CREATE INDEX {} ON image_sets (datastore, deleted, {sort});\n",
            index_name(None, sort)
        ));
        for column in EQUAL_COLUMNS {
            // An erased image set has no attributes left, so an attribute
            // index holds live image sets only; `is_primary` stays.
            let deleted = if column == "is_primary" {
                "deleted, "
            } else {
                ""
            };
            sql.push_str(&format!(
                "CREATE INDEX {} ON image_sets (datastore, {deleted}{column}, {sort});\n",
                index_name(Some(column), sort)
            ));
        }
    }
    sql
}

/// Settings of every connection. `secure_delete` makes SQLite overwrite
/// what it deletes, so an erased patient's attributes do not linger in free
/// pages. The query planner stability guarantee (QPSG) keeps a statement's
/// plan independent of the values bound to it: without it, SQLite marks
/// statements with an ORDER BY or a bound LIMIT beside two equality terms
/// (most of the store's) as depending on their values, and every reuse from
/// the statement cache (which clears the bindings) compiled them again:
/// half of a QIDO-RS search's time went to SQLite's parser.
pub fn configure(connection: &Connection, durable: bool) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    connection.pragma_update(None, "secure_delete", "ON")?;
    connection.pragma_update(None, "foreign_keys", "OFF")?;
    if durable {
        // WAL: readers never wait for the writer. FULL: a transaction is on
        // disk when COMMIT returns, so an acknowledged write survives a
        // power loss, not only a crash.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(())
}

/// What brings a database of version n (index n - 1) to version n + 1.
/// Version 2: `last_accessed_at` (the storage tier's clock; `NULL` reads as
/// the creation time).
const MIGRATIONS: &[&str] = &["ALTER TABLE image_sets ADD COLUMN last_accessed_at INTEGER;"];

/// Creates the schema in an empty database, or checks an existing one.
pub fn prepare(connection: &Connection) -> Result<(), String> {
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let application: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if tables == 0 {
        // auto_vacuum must be chosen before the first table exists.
        connection
            .execute_batch(&format!(
                "PRAGMA auto_vacuum = INCREMENTAL;
                 BEGIN;
                 {TABLES}
                 {}
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {VERSION};
                 COMMIT;",
                search_indexes()
            ))
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    if application != APPLICATION_ID {
        return Err("the file is not a HealthImaging emulator store".into());
    }
    if !(1..=VERSION).contains(&version) {
        return Err(format!(
            "the store has schema version {version}; this emulator reads versions 1 to {VERSION}"
        ));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
        let to = from + 2;
        connection
            .execute_batch(&format!(
                "BEGIN; {migration} PRAGMA user_version = {to}; COMMIT;"
            ))
            .map_err(|e| format!("could not bring the store to schema version {to}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_schema_and_a_foreign_one_is_refused() {
        let connection = Connection::open_in_memory().unwrap();
        prepare(&connection).unwrap();
        prepare(&connection).expect("an existing store opens");
        let indexes: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'search_%'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 21);

        let foreign = Connection::open_in_memory().unwrap();
        foreign.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(
            prepare(&foreign)
                .unwrap_err()
                .contains("not a HealthImaging")
        );
    }

    /// A cached statement is compiled once: reusing it with other values
    /// does not prepare it again (without QPSG, each of these statements was
    /// prepared again at every use).
    #[test]
    fn cached_statements_are_not_prepared_again_for_new_values() {
        let connection = Connection::open_in_memory().unwrap();
        configure(&connection, false).unwrap();
        prepare(&connection).unwrap();
        for sql in [
            "SELECT row FROM image_sets WHERE datastore = ? AND study_uid = ? ORDER BY created_at",
            "SELECT row FROM image_sets INDEXED BY search_study_uid_created_at
             WHERE datastore = ? AND deleted = 0 AND study_uid = ? AND is_primary = 1
             ORDER BY created_at, row LIMIT ?",
        ] {
            for n in 0..5_i64 {
                let mut statement = connection.prepare_cached(sql).unwrap();
                let values: Vec<rusqlite::types::Value> = (0..statement.parameter_count())
                    .map(|k| match k {
                        1 => rusqlite::types::Value::Text(format!("2.25.{n}")),
                        _ => rusqlite::types::Value::Integer(n + 1),
                    })
                    .collect();
                let mut rows = statement.query(rusqlite::params_from_iter(values)).unwrap();
                while rows.next().unwrap().is_some() {}
                drop(rows);
                assert_eq!(
                    statement.get_status(rusqlite::StatementStatus::RePrepare),
                    0,
                    "{sql}"
                );
            }
        }
    }

    #[test]
    fn a_version_1_store_is_brought_up_to_date_and_a_newer_one_refused() {
        let connection = Connection::open_in_memory().unwrap();
        prepare(&connection).unwrap();
        // What version 1 was: no last_accessed_at.
        connection
            .execute_batch(
                "ALTER TABLE image_sets DROP COLUMN last_accessed_at; PRAGMA user_version = 1;",
            )
            .unwrap();
        prepare(&connection).expect("a version 1 store opens");
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        connection
            .execute_batch("SELECT last_accessed_at FROM image_sets")
            .expect("the column exists");
        connection
            .execute_batch(&format!("PRAGMA user_version = {};", VERSION + 1))
            .unwrap();
        assert!(prepare(&connection).unwrap_err().contains("schema version"));
    }
}
