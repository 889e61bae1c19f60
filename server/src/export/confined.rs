//! Folders entered without following links. Each step down is an `openat`
//! with `O_NOFOLLOW` relative to the folder above, held open; files are
//! created `O_EXCL` inside a held folder and renamed within it. A link
//! planted below an allowed folder, or swapped in for a folder at any moment
//! of a job, therefore cannot carry an export elsewhere: there is no moment
//! between a check and a use, because the open is the check.
//!
//! The allowed root itself is the operator's (or the emulator's S3 folder)
//! and is opened by path: it may be a link.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An open folder, and its path (for messages only: nothing is reached by it).
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

/// A single path component as a C string, or why it is not one.
fn component(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a single folder or file name", name.display()),
        ));
    }
    CString::new(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

impl Folder {
    /// The allowed folder `path`, created when missing.
    pub fn root(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let file = std::fs::OpenOptions::new().read(true).open(path)?;
        if !file.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", path.display()),
            ));
        }
        Ok(Self {
            fd: file.into(),
            path: path.to_owned(),
        })
    }

    /// The folder `name` inside this one, created when missing; with `new`
    /// it must not exist yet. A link (or a file) there is refused.
    pub fn child(&self, name: &OsStr, new: bool) -> Result<Self, String> {
        let path = self.path.join(name);
        let c_name = component(name).map_err(|e| e.to_string())?;
        // SAFETY: `fd` is an open folder and `c_name` a NUL-terminated name;
        // mkdirat never follows a link at the name (it fails with EEXIST).
        let made = check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c_name.as_ptr(), 0o777) });
        match made {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && new => {
                return Err(format!(
                    "the job's folder {} exists already",
                    path.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "the folder {} could not be created: {e}",
                    path.display()
                ));
            }
        }
        // SAFETY: as above; the descriptor returned is owned below.
        let opened = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        });
        match opened {
            // SAFETY: a descriptor openat just returned, owned by nothing else.
            Ok(fd) => Ok(Self {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path,
            }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                Err(format!(
                    "{} is a link or a file, not a folder: exports do not follow links",
                    path.display()
                ))
            }
            Err(e) => Err(format!(
                "the folder {} could not be opened: {e}",
                path.display()
            )),
        }
    }

    /// The folder reached from this one through `names`, each entered as
    /// [`Folder::child`] does (created when missing).
    pub fn descend<'a>(&self, names: impl IntoIterator<Item = &'a OsStr>) -> Result<Self, String> {
        let mut current = self.reopen().map_err(|e| e.to_string())?;
        for name in names {
            current = current.child(name, false)?;
        }
        Ok(current)
    }

    fn reopen(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// Writes `bytes` as the file `name` in this folder, whole: a temporary
    /// file created anew (`O_EXCL`, which never follows a link), flushed,
    /// then renamed over `name` (which replaces a link rather than writing
    /// where it points).
    pub fn write_new_file(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        let target = component(name)?;
        let mut temporary_name = name.to_owned();
        temporary_name.push(".tmp");
        let temporary = component(&temporary_name)?;
        let dir = self.fd.as_raw_fd();
        // A crash's leftover (or anything planted there) goes; unlinkat
        // removes a link itself, never its target.
        // SAFETY: `dir` is open and the name NUL-terminated.
        match check(unsafe { libc::unlinkat(dir, temporary.as_ptr(), 0) }) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // SAFETY: as above; the descriptor is owned by the File below.
        let fd = check(unsafe {
            libc::openat(
                dir,
                temporary.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        })?;
        // SAFETY: a descriptor openat just returned, owned by nothing else.
        let mut file = unsafe { File::from_raw_fd(fd) };
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        drop(file);
        if let Err(e) = written {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dir, temporary.as_ptr(), 0) };
            return Err(e);
        }
        // SAFETY: both names are in the held folder.
        check(unsafe { libc::renameat(dir, temporary.as_ptr(), dir, target.as_ptr()) })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(name: &str) -> &OsStr {
        OsStr::new(name)
    }

    #[test]
    fn folders_are_made_and_entered_and_files_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = Folder::root(&dir.path().join("exports")).unwrap();
        let job = root.child(os("job"), true).unwrap();
        assert!(
            root.child(os("job"), true)
                .unwrap_err()
                .contains("exists already")
        );
        let series = job.descend([os("study"), os("series")]).unwrap();
        series.write_new_file(os("a.dcm"), b"first").unwrap();
        series.write_new_file(os("a.dcm"), b"second").unwrap();
        let path = dir.path().join("exports/job/study/series/a.dcm");
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert!(
            !path.with_file_name("a.dcm.tmp").exists(),
            "no temporary left"
        );
        for bad in ["", ".", "..", "a/b"] {
            assert!(job.child(os(bad), false).is_err(), "{bad:?}");
            assert!(job.write_new_file(os(bad), b"x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_and_files_are_refused_where_a_folder_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = Folder::root(&dir.path().join("exports")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("exports/link")).unwrap();
        std::fs::write(dir.path().join("exports/file"), b"").unwrap();
        for name in ["link", "file"] {
            let error = root.child(os(name), false).unwrap_err();
            assert!(error.contains("exports do not follow links"), "{error}");
            let error = root.descend([os(name), os("below")]).unwrap_err();
            assert!(error.contains("exports do not follow links"), "{error}");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    /// The moment the path-based checks left open: a folder checked, then
    /// swapped for a link before the file is created. A held folder is the
    /// folder that was checked, whatever its path now leads to.
    #[test]
    fn a_folder_swapped_for_a_link_after_it_was_entered_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = Folder::root(&dir.path().join("exports")).unwrap();
        let series = root.descend([os("study"), os("series")]).unwrap();
        let series_path = dir.path().join("exports/study/series");
        std::fs::rename(&series_path, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &series_path).unwrap();
        series.write_new_file(os("a.dcm"), b"pixels").unwrap();
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing reached the link's target"
        );
        assert_eq!(
            std::fs::read(dir.path().join("moved/a.dcm")).unwrap(),
            b"pixels"
        );
        // Entered again, the swapped path is refused.
        let error = root.descend([os("study"), os("series")]).unwrap_err();
        assert!(error.contains("exports do not follow links"), "{error}");
    }

    #[test]
    fn a_link_at_the_file_name_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"precious").unwrap();
        let root = Folder::root(&dir.path().join("exports")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("exports/a.dcm")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("exports/a.dcm.tmp")).unwrap();
        root.write_new_file(os("a.dcm"), b"export").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let written = dir.path().join("exports/a.dcm");
        assert!(!written.symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read(written).unwrap(), b"export");
    }
}
