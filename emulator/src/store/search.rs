//! SearchImageSets on the database: a query becomes one or two index walks.
//!
//! Every filter and sort field has an index over the image sets that are
//! not deleted ([`super::schema`]), ending in the image set's row number,
//! which breaks ties. A page continues after its cursor (sort key, row) in
//! two seeks, the rest of the cursor's key and then the keys beyond it, so a
//! page costs a seek and the page whatever the datastore's size, even when
//! thousands of image sets share one timestamp.
//!
//! Which index leads:
//! - an EQUAL on an identifier (patient, accession, study, series) leads
//!   with its index on the sort field, any other condition filtering what it
//!   yields;
//! - otherwise a BETWEEN on a field other than the sort field leads when its
//!   range is small ([`SMALL_RANGE`] image sets or fewer): the range is read
//!   whole and sorted;
//! - otherwise the sort field's index leads (with `isPrimary` if asked),
//!   a BETWEEN on the sort field bounding the walk.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::schema::index_name;

/// An attribute an EQUAL filter matches exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// `DICOMPatientId`.
    PatientId,
    /// `DICOMAccessionNumber`.
    AccessionNumber,
    /// `DICOMStudyId`.
    StudyId,
    /// `DICOMStudyInstanceUID`.
    StudyInstanceUid,
    /// `DICOMSeriesInstanceUID`.
    SeriesInstanceUid,
}

impl Attribute {
    pub(super) fn column(self) -> &'static str {
        match self {
            Attribute::PatientId => "patient_id",
            Attribute::AccessionNumber => "accession_number",
            Attribute::StudyId => "study_id",
            Attribute::StudyInstanceUid => "study_uid",
            Attribute::SeriesInstanceUid => "series_uid",
        }
    }
}

/// A field results can be ordered by, and BETWEEN can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    /// `updatedAt`.
    UpdatedAt,
    /// `createdAt`.
    CreatedAt,
    /// `DICOMStudyDateAndTime`.
    StudyDateAndTime,
}

impl SortField {
    fn column(self) -> &'static str {
        match self {
            SortField::UpdatedAt => "updated_at",
            SortField::CreatedAt => "created_at",
            SortField::StudyDateAndTime => "study_date_time",
        }
    }
}

/// A value of a sort field. Times are milliseconds; study date and time is
/// the normalized `YYYYMMDDHHMMSS.FFFFFF` (empty when the study has no date).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SortKey {
    /// `createdAt` or `updatedAt`.
    Millis(u64),
    /// `DICOMStudyDateAndTime`.
    Text(String),
}

impl SortKey {
    fn sql(&self) -> SqlValue {
        match self {
            SortKey::Millis(ms) => SqlValue::Integer(i64::try_from(*ms).unwrap_or(i64::MAX)),
            SortKey::Text(text) => SqlValue::Text(text.clone()),
        }
    }

    fn read(field: SortField, value: SqlValue) -> Self {
        match (field, value) {
            (SortField::StudyDateAndTime, SqlValue::Text(text)) => SortKey::Text(text),
            (SortField::StudyDateAndTime, _) => SortKey::Text(String::new()),
            (_, SqlValue::Integer(ms)) => SortKey::Millis(u64::try_from(ms).unwrap_or(0)),
            (_, _) => SortKey::Millis(0),
        }
    }
}

/// One condition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The attribute equals the value.
    Equal(Attribute, String),
    /// `isPrimary` equals the flag.
    IsPrimary(bool),
    /// The field lies within the bounds, both inclusive.
    Between(SortField, SortKey, SortKey),
}

impl Condition {
    fn sql(&self, values: &mut Vec<SqlValue>) -> String {
        match self {
            Condition::Equal(attribute, value) => {
                values.push(SqlValue::Text(value.clone()));
                format!("{} = ?", attribute.column())
            }
            Condition::IsPrimary(flag) => {
                values.push(SqlValue::Integer(i64::from(*flag)));
                "is_primary = ?".to_owned()
            }
            Condition::Between(field, low, high) => {
                values.push(low.sql());
                values.push(high.sql());
                // A study without a date ('') lies below every bound.
                format!("{} BETWEEN ? AND ?", field.column())
            }
        }
    }
}

/// A position in an ordering: the last key and row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last image set returned.
    pub key: SortKey,
    /// The row of the last image set returned.
    pub row: i64,
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The datastore searched.
    pub datastore_id: String,
    /// Every condition must hold.
    pub conditions: Vec<Condition>,
    /// The ordering.
    pub sort: SortField,
    /// Descending order.
    pub descending: bool,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// At most this many results.
    pub limit: usize,
}

/// A BETWEEN on another field than the sort field leads the search when
/// it holds at most this many image sets.
pub const SMALL_RANGE: usize = 4096;

/// The rows of one page of `query` in datastore `datastore` (its sequence
/// number), with their sort keys, in order; one more than `limit` when more
/// follow.
pub(super) fn page(
    connection: &Connection,
    datastore: i64,
    query: &Query,
) -> rusqlite::Result<Vec<(SortKey, i64)>> {
    let sort = query.sort.column();
    let leading_equal = query.conditions.iter().find_map(|c| match c {
        Condition::Equal(attribute, _) => Some(attribute.column()),
        _ => None,
    });
    let other_range = query
        .conditions
        .iter()
        .find(|c| matches!(c, Condition::Between(field, _, _) if *field != query.sort));
    if leading_equal.is_none()
        && let Some(range) = other_range
        && range_size(connection, datastore, range)? <= SMALL_RANGE
    {
        return sorted_range(connection, datastore, query, range);
    }
    let primary = query
        .conditions
        .iter()
        .any(|c| matches!(c, Condition::IsPrimary(_)));
    let index = match (leading_equal, primary) {
        (Some(column), _) => index_name(Some(column), sort),
        (None, true) => index_name(Some("is_primary"), sort),
        (None, false) => index_name(None, sort),
    };
    let (direction, beyond) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let mut values = vec![SqlValue::Integer(datastore)];
    let mut filter = String::new();
    for condition in &query.conditions {
        filter.push_str(" AND ");
        filter.push_str(&condition.sql(&mut values));
    }
    let wanted = query.limit + 1;
    let mut rows = Vec::with_capacity(wanted);
    let select = format!(
        "SELECT {sort}, row FROM image_sets INDEXED BY {index}
         WHERE datastore = ? AND deleted = 0{filter}"
    );
    match &query.after {
        None => {
            let sql = format!("{select} ORDER BY {sort} {direction}, row {direction} LIMIT ?");
            read_into(connection, &sql, &values, wanted, query.sort, &mut rows)?;
        }
        Some(cursor) => {
            // The rest of the cursor's key, then the keys beyond it.
            let sql = format!(
                "{select} AND {sort} = ? AND row {beyond} ? ORDER BY row {direction} LIMIT ?"
            );
            let mut ties = values.clone();
            ties.push(cursor.key.sql());
            ties.push(SqlValue::Integer(cursor.row));
            read_into(connection, &sql, &ties, wanted, query.sort, &mut rows)?;
            if rows.len() < wanted {
                let sql = format!(
                    "{select} AND {sort} {beyond} ? ORDER BY {sort} {direction}, row {direction} LIMIT ?"
                );
                values.push(cursor.key.sql());
                read_into(
                    connection,
                    &sql,
                    &values,
                    wanted - rows.len(),
                    query.sort,
                    &mut rows,
                )?;
            }
        }
    }
    Ok(rows)
}

/// How many image sets lie in `range`, counted up to one past [`SMALL_RANGE`].
fn range_size(
    connection: &Connection,
    datastore: i64,
    range: &Condition,
) -> rusqlite::Result<usize> {
    let Condition::Between(field, ..) = range else {
        return Ok(0);
    };
    let mut values = vec![SqlValue::Integer(datastore)];
    let condition = range.sql(&mut values);
    values.push(SqlValue::Integer((SMALL_RANGE + 1) as i64));
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM image_sets INDEXED BY {}
         WHERE datastore = ? AND deleted = 0 AND {condition} LIMIT ?)",
        index_name(None, field.column())
    );
    let count: i64 = connection
        .prepare_cached(&sql)?
        .query_row(params_from_iter(values), |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// A page read from a small range of another field, sorted in memory by SQLite.
fn sorted_range(
    connection: &Connection,
    datastore: i64,
    query: &Query,
    range: &Condition,
) -> rusqlite::Result<Vec<(SortKey, i64)>> {
    let Condition::Between(field, ..) = range else {
        return Ok(Vec::new());
    };
    let sort = query.sort.column();
    let (direction, beyond) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let mut values = vec![SqlValue::Integer(datastore)];
    let mut filter = String::new();
    for condition in &query.conditions {
        filter.push_str(" AND ");
        filter.push_str(&condition.sql(&mut values));
    }
    if let Some(cursor) = &query.after {
        filter.push_str(&format!(" AND ({sort}, row) {beyond} (?, ?)"));
        values.push(cursor.key.sql());
        values.push(SqlValue::Integer(cursor.row));
    }
    let sql = format!(
        "SELECT {sort}, row FROM image_sets INDEXED BY {}
         WHERE datastore = ? AND deleted = 0{filter}
         ORDER BY {sort} {direction}, row {direction} LIMIT ?",
        index_name(None, field.column())
    );
    let mut rows = Vec::new();
    read_into(
        connection,
        &sql,
        &values,
        query.limit + 1,
        query.sort,
        &mut rows,
    )?;
    Ok(rows)
}

fn read_into(
    connection: &Connection,
    sql: &str,
    values: &[SqlValue],
    limit: usize,
    field: SortField,
    rows: &mut Vec<(SortKey, i64)>,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(sql)?;
    let parameters = values
        .iter()
        .cloned()
        .chain([SqlValue::Integer(limit as i64)]);
    let mut found = statement.query(params_from_iter(parameters))?;
    while let Some(row) = found.next()? {
        rows.push((SortKey::read(field, row.get(0)?), row.get(1)?));
    }
    Ok(())
}
