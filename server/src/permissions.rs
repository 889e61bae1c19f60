//! Permission levels: which tools an operator lets the assistant see.
//!
//! Every tool has one level, read from its MCP annotations so that the level
//! and what the assistant is told can never disagree: `readOnlyHint` means
//! read, `destructiveHint` means delete, anything else writes. Tools outside
//! the grant are removed from the router, not registered and refused.

use rmcp::model::Tool;

/// What a tool may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only reads.
    Read,
    /// Creates, imports, updates, copies or tags.
    Write,
    /// Deletes or removes.
    Delete,
}

impl Level {
    /// The level of `tool`, from its annotations.
    pub fn of(tool: &Tool) -> Level {
        let annotations = tool.annotations.as_ref();
        if annotations.and_then(|a| a.destructive_hint) == Some(true) {
            Level::Delete
        } else if annotations.and_then(|a| a.read_only_hint) == Some(true) {
            Level::Read
        } else {
            Level::Write
        }
    }
}

/// The levels granted to the assistant. Read is always granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Write tools are available.
    pub write: bool,
    /// Delete tools are available.
    pub delete: bool,
}

impl Grant {
    /// Read only.
    pub const READ_ONLY: Grant = Grant {
        write: false,
        delete: false,
    };
    /// Every tool.
    pub const ALL: Grant = Grant {
        write: true,
        delete: true,
    };

    /// Whether tools of `level` are available.
    pub fn allows(self, level: Level) -> bool {
        match level {
            Level::Read => true,
            Level::Write => self.write,
            Level::Delete => self.delete,
        }
    }

    /// A short description for the server's instructions and log.
    pub fn describe(self) -> &'static str {
        match (self.write, self.delete) {
            (false, false) => "read only",
            (true, false) => "read and write (no deletes)",
            (false, true) => "read and delete (no writes)",
            (true, true) => "read, write and delete",
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ToolAnnotations;

    use super::*;

    fn tool(read_only: Option<bool>, destructive: Option<bool>) -> Tool {
        let mut annotations = ToolAnnotations::default();
        annotations.read_only_hint = read_only;
        annotations.destructive_hint = destructive;
        Tool::new("t", "d", serde_json::Map::new()).with_annotations(annotations)
    }

    #[test]
    fn levels_come_from_annotations() {
        assert_eq!(Level::of(&tool(Some(true), Some(false))), Level::Read);
        assert_eq!(Level::of(&tool(Some(false), Some(false))), Level::Write);
        assert_eq!(Level::of(&tool(Some(false), Some(true))), Level::Delete);
        assert_eq!(
            Level::of(&tool(None, None)),
            Level::Write,
            "unannotated tools are not read-only"
        );
    }

    #[test]
    fn grants() {
        assert!(Grant::READ_ONLY.allows(Level::Read));
        assert!(!Grant::READ_ONLY.allows(Level::Write));
        assert!(
            !Grant {
                write: true,
                delete: false
            }
            .allows(Level::Delete)
        );
        assert!(Grant::ALL.allows(Level::Delete));
    }
}
