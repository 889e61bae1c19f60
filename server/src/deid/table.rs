//! Table E.1-1 of PS3.15, read from the pinned machine-readable edition in
//! `server/data/deid/` (see its README): no hand-written list.

use std::collections::HashMap;
use std::sync::LazyLock;

use dicom_core::Tag;
use serde::Deserialize;

/// The pinned table, as checked in.
pub const TABLE_JSON: &str =
    include_str!("../../data/deid/confidentiality_profile_attributes.json");
/// The DICOM edition the table comes from.
pub const EDITION: &str = "2024b";

/// An action code of the table (PS3.15 E.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Replace with a non-zero length dummy value consistent with the VR.
    D,
    /// Replace with a zero length value (or a dummy).
    Z,
    /// Remove.
    X,
    /// Keep.
    K,
    /// Clean: replace with values of similar meaning free of identifying information.
    C,
    /// Replace UIDs with non-zero length UIDs, consistently within the set.
    U,
}

/// The profile options of the table's columns this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    /// Retain UIDs Option.
    RetainUids,
    /// Retain Device Identity Option.
    RetainDeviceIdentity,
    /// Retain Patient Characteristics Option.
    RetainPatientCharacteristics,
    /// Retain Longitudinal Temporal Information with Modified Dates Option.
    RetainModifiedDates,
    /// Clean Descriptors Option.
    CleanDescriptors,
}

impl Opt {
    fn column(self) -> &'static str {
        match self {
            Opt::RetainUids => "rtnUIDsOpt",
            Opt::RetainDeviceIdentity => "rtnDevIdOpt",
            Opt::RetainPatientCharacteristics => "rtnPatCharsOpt",
            Opt::RetainModifiedDates => "rtnLongModifDatesOpt",
            Opt::CleanDescriptors => "cleanDescOpt",
        }
    }

    /// Every option, in the order an attribute's action is decided by them.
    pub const ALL: [Opt; 5] = [
        Opt::RetainUids,
        Opt::RetainDeviceIdentity,
        Opt::RetainPatientCharacteristics,
        Opt::RetainModifiedDates,
        Opt::CleanDescriptors,
    ];
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The attribute's name.
    pub name: String,
    /// What the row covers.
    pub pattern: Pattern,
    /// The basic profile's action; a compound action (`X/Z/D`) resolved to
    /// its last alternative (see [`resolve`]).
    pub basic: Action,
    /// The basic profile's action as written, e.g. `X/Z/U*`.
    pub basic_as_written: String,
    /// The options' actions.
    pub options: HashMap<Opt, Action>,
}

/// Which attributes a row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// One tag.
    Tag(Tag),
    /// A repeating group (`50XX,XXXX`, `60XX,3000`): the group's high byte and
    /// the element, `None` for any element.
    Repeating {
        /// The group with its low byte cleared (0x5000, 0x6000).
        group: u16,
        /// The element, when fixed.
        element: Option<u16>,
    },
    /// Every private attribute (odd group).
    Private,
}

impl Pattern {
    /// Whether `tag` is covered.
    pub fn matches(self, tag: Tag) -> bool {
        match self {
            Pattern::Tag(t) => t == tag,
            Pattern::Repeating { group, element } => {
                tag.group() & 0xFF00 == group && element.is_none_or(|e| e == tag.element())
            }
            Pattern::Private => tag.group() % 2 == 1,
        }
    }
}

#[derive(Deserialize)]
struct RawRow {
    name: String,
    tag: String,
    #[serde(rename = "basicProfile")]
    basic_profile: String,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

/// The parsed table.
pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::parse(TABLE_JSON).expect("the pinned Table E.1-1 parses (checked by a test)")
});

/// Table E.1-1, indexed.
#[derive(Debug)]
pub struct Table {
    /// Every row, in the file's order.
    pub rows: Vec<Row>,
    by_tag: HashMap<Tag, usize>,
    patterns: Vec<usize>,
}

impl Table {
    /// Parses the table's JSON.
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: Vec<RawRow> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut rows = Vec::with_capacity(raw.len());
        for row in raw {
            let pattern = parse_pattern(&row.tag)
                .ok_or_else(|| format!("row '{}' has an unreadable tag {}", row.name, row.tag))?;
            let basic = resolve(&row.basic_profile).ok_or_else(|| {
                format!(
                    "row '{}' has an unknown action {}",
                    row.name, row.basic_profile
                )
            })?;
            let mut options = HashMap::new();
            for opt in Opt::ALL {
                if let Some(code) = row.rest.get(opt.column()).and_then(|v| v.as_str()) {
                    let action = resolve(code).ok_or_else(|| {
                        format!("row '{}' has an unknown option action {code}", row.name)
                    })?;
                    options.insert(opt, action);
                }
            }
            rows.push(Row {
                name: row.name,
                pattern,
                basic,
                basic_as_written: row.basic_profile,
                options,
            });
        }
        let mut by_tag = HashMap::new();
        let mut patterns = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            match row.pattern {
                Pattern::Tag(tag) => {
                    by_tag.insert(tag, index);
                }
                _ => patterns.push(index),
            }
        }
        Ok(Self {
            rows,
            by_tag,
            patterns,
        })
    }

    /// The row covering `tag`, if any.
    pub fn row(&self, tag: Tag) -> Option<&Row> {
        if let Some(&index) = self.by_tag.get(&tag) {
            return Some(&self.rows[index]);
        }
        self.patterns
            .iter()
            .map(|&i| &self.rows[i])
            .find(|row| row.pattern.matches(tag))
    }
}

/// A compound action (`X/Z`, `X/D`, `X/Z/D`, `Z/D`, `X/Z/U*`) is chosen per
/// IOD by the attribute's type there. Without the IOD's type tables at hand
/// the last alternative is taken: it keeps a Type 1 or 2 attribute present
/// (so the object stays valid) while removing its content all the same.
pub fn resolve(code: &str) -> Option<Action> {
    let last = code.rsplit('/').next()?.trim_end_matches('*');
    Some(match last {
        "D" => Action::D,
        "Z" => Action::Z,
        "X" => Action::X,
        "K" => Action::K,
        "C" => Action::C,
        "U" => Action::U,
        _ => return None,
    })
}

fn parse_pattern(text: &str) -> Option<Pattern> {
    if text.starts_with("(GGGG,EEEE)") {
        return Some(Pattern::Private);
    }
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let (group, element) = inner.split_once(',')?;
    if let Some(high) = group.strip_suffix("XX") {
        let high = u16::from_str_radix(high, 16).ok()?;
        let element = if element == "XXXX" {
            None
        } else {
            Some(u16::from_str_radix(element, 16).ok()?)
        };
        return Some(Pattern::Repeating {
            group: high << 8,
            element,
        });
    }
    Some(Pattern::Tag(Tag(
        u16::from_str_radix(group, 16).ok()?,
        u16::from_str_radix(element, 16).ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_table_has_not_drifted() {
        let digest = ring::digest::digest(&ring::digest::SHA256, TABLE_JSON.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex, "a99a35d1278e2bace8d90ff791b11aea2d45f1e3e1230388eb5224c9dbcd29e6",
            "Table E.1-1 changed: review the new edition's diff, then update the hash, the row count and server/data/deid/README.md"
        );
        assert_eq!(TABLE.rows.len(), 621);
    }

    #[test]
    fn rows_are_found_by_tag_and_pattern() {
        let name = TABLE.row(Tag(0x0010, 0x0010)).unwrap();
        assert_eq!(name.name, "Patient's Name");
        assert_eq!(name.basic, Action::Z);
        let study_uid = TABLE.row(Tag(0x0020, 0x000D)).unwrap();
        assert_eq!(study_uid.basic, Action::U);
        assert_eq!(study_uid.options.get(&Opt::RetainUids), Some(&Action::K));
        let overlay = TABLE.row(Tag(0x6002, 0x3000)).unwrap();
        assert_eq!(overlay.basic, Action::X);
        assert!(
            TABLE.row(Tag(0x6002, 0x0010)).is_none(),
            "overlay rows are not in the table"
        );
        let private = TABLE.row(Tag(0x0009, 0x1001)).unwrap();
        assert_eq!(private.pattern, Pattern::Private);
        assert!(
            TABLE.row(Tag(0x0028, 0x0010)).is_none(),
            "Rows is not in the table"
        );
    }

    #[test]
    fn compound_actions_take_the_last_alternative() {
        assert_eq!(resolve("X/Z/U*"), Some(Action::U));
        assert_eq!(resolve("X/Z/D"), Some(Action::D));
        assert_eq!(resolve("X/Z"), Some(Action::Z));
        assert_eq!(resolve("Q"), None);
    }
}
