//! The journal: every change to the store, one JSON line each, appended and
//! synced before the change is acknowledged.
//!
//! Replaying the journal from the start rebuilds the store exactly. A crash
//! can at worst leave a torn last line (the write was never acknowledged):
//! replay drops it and truncates the file there. A damaged line anywhere else
//! means the file was altered, and opening fails rather than guess.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Change;

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// Why a journal could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("Could not use the journal '{path}': {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A line before the last does not parse.
    #[error("The journal '{path}' is damaged at line {line}: {problem}")]
    Damaged {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

impl Journal {
    /// Opens (or creates) the journal at `path` and returns every change it
    /// holds, in order.
    pub fn open(path: &Path) -> Result<(Self, Vec<Change>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut changes = Vec::new();
        let mut good_end = 0u64;
        let mut damaged: Option<(usize, String)> = None;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            number += 1;
            if let Some((at, problem)) = damaged.take() {
                return Err(JournalError::Damaged {
                    path: path.to_owned(),
                    line: at,
                    problem,
                });
            }
            let complete = line.last() == Some(&b'\n');
            match serde_json::from_slice::<Change>(&line) {
                Ok(change) if complete => {
                    changes.push(change);
                    good_end += read as u64;
                }
                Ok(_) => damaged = Some((number, "the line is not terminated".into())),
                Err(error) => damaged = Some((number, error.to_string())),
            }
        }
        if damaged.is_some() {
            // The last line is torn: it was never acknowledged.
            file.set_len(good_end).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        Ok((
            Self {
                path: path.to_owned(),
                file,
            },
            changes,
        ))
    }

    /// Appends `change` and waits until it is on disk.
    pub fn append(&mut self, change: &Change) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(change).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// Empties the journal.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::clock::Timestamp;

    fn change(n: u64) -> Change {
        Change::DatastoreDeleteRequested {
            datastore_id: format!("{n:032}"),
            at: Timestamp::from_millis(n),
        }
    }

    #[test]
    fn changes_survive_reopening_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.ndjson");
        let (mut journal, replayed) = Journal::open(&path).unwrap();
        assert!(replayed.is_empty());
        journal.append(&change(1)).unwrap();
        journal.append(&change(2)).unwrap();
        drop(journal);
        // A crash in the middle of the third write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"change\":\"datastoreDel")
            .unwrap();
        let (mut journal, replayed) = Journal::open(&path).unwrap();
        assert_eq!(replayed, vec![change(1), change(2)]);
        journal.append(&change(3)).unwrap();
        drop(journal);
        let (_, replayed) = Journal::open(&path).unwrap();
        assert_eq!(
            replayed,
            vec![change(1), change(2), change(3)],
            "the tail was cut, not kept"
        );
    }

    #[test]
    fn damage_before_the_last_line_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.ndjson");
        let line = serde_json::to_string(&change(1)).unwrap();
        std::fs::write(&path, format!("{line}\nnot json\n{line}\n")).unwrap();
        let error = Journal::open(&path).unwrap_err();
        assert!(
            matches!(error, JournalError::Damaged { line: 2, .. }),
            "{error}"
        );
    }
}
