//! Folders entered without following links. Each step down is an `openat`
//! with `O_NOFOLLOW` relative to the folder above, held open; files are
//! opened and created inside a held folder, never by path. A link planted
//! below an allowed folder, or swapped in for a folder at any moment,
//! therefore cannot carry a read or a write elsewhere: there is no moment
//! between a check and a use, because the open is the check. The server's
//! exports and the emulator's S3 folder both go through it.
//!
//! The allowed root itself is the operator's (or the emulator's S3 folder)
//! and is opened by path: it may be a link.

use std::ffi::{CStr, CString, OsStr, OsString};
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

/// A link met where a folder or file was to be opened: the error's payload,
/// so that callers tell it from a file they may not read (both are
/// `PermissionDenied`).
#[derive(Debug)]
pub struct LinkRefused(pub PathBuf);

impl std::fmt::Display for LinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is or goes through a symbolic link, which is not followed",
            self.0.display()
        )
    }
}

impl std::error::Error for LinkRefused {}

/// Whether `error` is a refused link.
pub fn is_link_refusal(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<LinkRefused>())
}

fn link_refused(path: PathBuf) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, LinkRefused(path))
}

/// What a folder entry is, as seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A folder.
    Folder,
    /// A regular file.
    File,
    /// A symbolic link.
    Link,
    /// A FIFO, socket or device.
    Other,
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
        Self::existing(path)
    }

    /// The allowed folder `path`, which must exist.
    pub fn existing(path: &Path) -> io::Result<Self> {
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

    /// Where this folder was found (for messages only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder `name` inside this one, made first when `create` is set
    /// and it is missing (an existing one is entered). A link there is
    /// refused ([`is_link_refusal`]); a file with `ENOTDIR`; a missing
    /// folder (without `create`) with `NotFound`.
    pub fn enter(&self, name: &OsStr, create: bool) -> io::Result<Self> {
        let path = self.path.join(name);
        let c_name = component(name)?;
        if create {
            // SAFETY: `fd` is an open folder and `c_name` a NUL-terminated
            // name; mkdirat never follows a link at the name (EEXIST).
            match check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c_name.as_ptr(), 0o777) }) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
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
                Err(self.refusal(&c_name, &path, e))
            }
            Err(e) => Err(e),
        }
    }

    /// `error` (ELOOP or ENOTDIR at `name`), said as a link when `name` is
    /// one: `O_NOFOLLOW` with `O_DIRECTORY` answers ENOTDIR for a link too.
    fn refusal(&self, c_name: &CStr, path: &Path, error: io::Error) -> io::Error {
        if self.kind_of(c_name) == Some(Kind::Link) {
            link_refused(path.to_owned())
        } else {
            error
        }
    }

    /// What the entry `c_name` is, without following it.
    fn kind_of(&self, c_name: &CStr) -> Option<Kind> {
        // SAFETY: an all-zero stat is a valid value for fstatat to fill.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open, the name NUL-terminated, `stat` writable.
        let looked = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                &mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (looked == 0).then_some(match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Folder,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Link,
            _ => Kind::Other,
        })
    }

    /// The folder `name` inside this one, created when missing; with `new`
    /// it must not exist yet. A link (or a file) there is refused.
    pub fn child(&self, name: &OsStr, new: bool) -> Result<Self, String> {
        let path = self.path.join(name);
        let c_name = component(name).map_err(|e| e.to_string())?;
        // SAFETY: `fd` is an open folder and `c_name` a NUL-terminated
        // name; mkdirat never follows a link at the name (EEXIST).
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
        self.enter(name, false).map_err(|e| {
            if is_link_refusal(&e) || e.raw_os_error() == Some(libc::ENOTDIR) {
                format!(
                    "{} is a link or a file, not a folder: exports do not follow links",
                    path.display()
                )
            } else {
                format!("the folder {} could not be opened: {e}", path.display())
            }
        })
    }

    /// Opens the file `name` in this folder for reading, never through a
    /// link ([`is_link_refusal`]), and without blocking on a FIFO or taking
    /// a terminal. The caller checks what it opened.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let c_name = component(name)?;
        // SAFETY: `fd` is open and the name NUL-terminated; the descriptor
        // is owned by the File below.
        let opened = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_RDONLY
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
            )
        });
        match opened {
            // SAFETY: a descriptor openat just returned, owned by nothing else.
            Ok(fd) => Ok(unsafe { File::from_raw_fd(fd) }),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                Err(self.refusal(&c_name, &self.path.join(name), e))
            }
            Err(e) => Err(e),
        }
    }

    /// Opens the file `names` leads to below this folder for reading, as
    /// [`Folder::enter`] for each folder and then [`Folder::open_file`]
    /// would, in one `openat2` call where the kernel has it
    /// (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a link anywhere on the way
    /// is refused, [`is_link_refusal`]).
    pub fn open_beneath(&self, names: &[&OsStr]) -> io::Result<File> {
        let Some((last, folders)) = names.split_last() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
        };
        #[cfg(target_os = "linux")]
        {
            let mut relative = Vec::new();
            for name in names {
                if !relative.is_empty() {
                    relative.push(b'/');
                }
                relative.extend_from_slice(component(name)?.as_bytes());
            }
            let relative = CString::new(relative)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            // SAFETY: an all-zero open_how is valid (no flags, no mode).
            let mut how: libc::open_how = unsafe { std::mem::zeroed() };
            how.flags = (libc::O_RDONLY
                | libc::O_NOFOLLOW
                | libc::O_NONBLOCK
                | libc::O_NOCTTY
                | libc::O_CLOEXEC) as u64;
            how.resolve =
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
            // SAFETY: `fd` is an open folder, `relative` NUL-terminated and
            // `how` a valid open_how of the size passed.
            let opened = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.fd.as_raw_fd(),
                    relative.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if opened >= 0 {
                // SAFETY: a descriptor openat2 just returned, owned by
                // nothing else (it fits an int: descriptors do).
                return Ok(unsafe { File::from_raw_fd(opened as libc::c_int) });
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                // A kernel before 5.6, or a sandbox that refuses the call:
                // one step at a time below.
                Some(libc::ENOSYS | libc::EPERM) => {}
                Some(libc::ELOOP | libc::EXDEV) => {
                    let mut path = self.path.clone();
                    path.extend(names.iter());
                    return Err(link_refused(path));
                }
                _ => return Err(error),
            }
        }
        self.open_stepwise(folders, last)
    }

    /// [`Folder::open_beneath`] one folder at a time.
    fn open_stepwise(&self, folders: &[&OsStr], last: &OsStr) -> io::Result<File> {
        let mut folder = self.reopen()?;
        for name in folders {
            folder = folder.enter(name, false)?;
        }
        folder.open_file(last)
    }

    /// Writes `bytes` as the file `name` in this folder, created or
    /// truncated in place; never through a link ([`is_link_refusal`]), and
    /// only into a regular file.
    pub fn write_file(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        let c_name = component(name)?;
        // SAFETY: as in `open_file`.
        let opened = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_TRUNC
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        });
        let mut file = match opened {
            // SAFETY: a descriptor openat just returned, owned by nothing else.
            Ok(fd) => unsafe { File::from_raw_fd(fd) },
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(self.refusal(&c_name, &self.path.join(name), e));
            }
            Err(e) => return Err(e),
        };
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", self.path.join(name).display()),
            ));
        }
        file.write_all(bytes)
    }

    /// The entries of this folder, each with what it is (links not
    /// followed), in no particular order.
    pub fn entries(&self) -> io::Result<Vec<(OsString, Kind)>> {
        // The stream gets its own descriptor: closedir closes it.
        // SAFETY: `fd` is open; the duplicate is handed to fdopendir.
        let duplicate =
            check(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: `duplicate` is an open folder descriptor nothing else owns.
        let stream = unsafe { libc::fdopendir(duplicate) };
        if stream.is_null() {
            let error = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so the descriptor is still ours.
            unsafe { libc::close(duplicate) };
            return Err(error);
        }
        // SAFETY: a fresh stream starts at its beginning; rewinding it
        // also resets a position the shared descriptor may have had.
        unsafe { libc::rewinddir(stream) };
        let mut entries = Vec::new();
        loop {
            // readdir says an error only through errno.
            clear_errno();
            // SAFETY: `stream` is open; readdir's entry is valid until the
            // next call on the same stream, and is copied before it.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                let error = io::Error::last_os_error();
                if error.raw_os_error().is_some_and(|code| code != 0) {
                    // SAFETY: `stream` is open and closed once.
                    unsafe { libc::closedir(stream) };
                    return Err(error);
                }
                break;
            }
            // SAFETY: `d_name` of an entry readdir returned is NUL-terminated.
            let (name, d_type) = unsafe {
                (
                    CStr::from_ptr((*entry).d_name.as_ptr()).to_owned(),
                    (*entry).d_type,
                )
            };
            if name.as_bytes() == b"." || name.as_bytes() == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_DIR => Some(Kind::Folder),
                libc::DT_REG => Some(Kind::File),
                libc::DT_LNK => Some(Kind::Link),
                libc::DT_UNKNOWN => self.kind_of(&name),
                _ => Some(Kind::Other),
            };
            // An entry gone since it was read is not listed.
            if let Some(kind) = kind {
                entries.push((OsStr::from_bytes(name.as_bytes()).to_owned(), kind));
            }
        }
        // SAFETY: `stream` is open and closed once, with its descriptor.
        unsafe { libc::closedir(stream) };
        Ok(entries)
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

/// Sets this thread's errno to 0.
fn clear_errno() {
    // SAFETY: errno is this thread's own variable.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe {
        *libc::__errno_location() = 0;
    }
    // SAFETY: as above.
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    unsafe {
        *libc::__error() = 0;
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
    fn entries_say_what_each_is_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = Folder::root(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("folder"), dir.path().join("link")).unwrap();
        let fifo = CString::new(dir.path().join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut entries = root.entries().unwrap();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<(OsString, Kind)> = [
            ("fifo", Kind::Other),
            ("file", Kind::File),
            ("folder", Kind::Folder),
            ("link", Kind::Link),
        ]
        .into_iter()
        .map(|(name, kind)| (OsString::from(name), kind))
        .collect();
        assert_eq!(entries, expected);
        // Read twice: the listing does not move the held folder.
        assert_eq!(root.entries().unwrap().len(), 4);
        // A FIFO opens without blocking (and is no regular file); a link
        // is refused, by name and on the way.
        let opened = root.open_file(os("fifo")).unwrap();
        assert!(!opened.metadata().unwrap().is_file());
        let error = root.open_file(os("link")).unwrap_err();
        assert!(is_link_refusal(&error), "{error}");
        let error = root.enter(os("link"), false).unwrap_err();
        assert!(is_link_refusal(&error), "{error}");
        let error = root.enter(os("file"), false).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOTDIR), "{error}");
        let error = root.enter(os("missing"), false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    }

    /// Opening below a folder in one call and one folder at a time give the
    /// same file or the same refusal, whatever is on the way.
    #[test]
    fn files_below_a_folder_open_alike_in_one_call_and_step_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::fs::write(outside.join("deep/secret.dcm"), b"outside").unwrap();
        let base = dir.path().join("s3");
        std::fs::create_dir_all(base.join("bucket/in/series")).unwrap();
        std::fs::write(base.join("bucket/in/series/a.dcm"), b"inside").unwrap();
        std::os::unix::fs::symlink(&outside, base.join("bucket/in/linked")).unwrap();
        std::os::unix::fs::symlink(
            outside.join("deep/secret.dcm"),
            base.join("bucket/in/file-link.dcm"),
        )
        .unwrap();
        std::os::unix::fs::symlink("../../..", base.join("bucket/in/up")).unwrap();
        let root = Folder::existing(&base).unwrap();
        let read = |file: io::Result<File>| -> Result<String, String> {
            match file {
                Ok(mut file) => {
                    let mut text = String::new();
                    io::Read::read_to_string(&mut file, &mut text).map_err(|e| e.to_string())?;
                    Ok(text)
                }
                Err(e) if is_link_refusal(&e) => Err("link".into()),
                Err(e) => Err(format!("{:?}", e.kind())),
            }
        };
        let cases: [(&[&str], Result<&str, &str>); 6] = [
            (&["bucket", "in", "series", "a.dcm"], Ok("inside")),
            (
                &["bucket", "in", "linked", "deep", "secret.dcm"],
                Err("link"),
            ),
            (&["bucket", "in", "file-link.dcm"], Err("link")),
            (
                &["bucket", "in", "up", "outside", "deep", "secret.dcm"],
                Err("link"),
            ),
            (&["bucket", "in", "missing.dcm"], Err("NotFound")),
            (
                &["bucket", "in", "series", "a.dcm", "below"],
                Err("NotADirectory"),
            ),
        ];
        for (names, expected) in cases {
            let names: Vec<&OsStr> = names.iter().map(OsStr::new).collect();
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(
                read(root.open_beneath(&names)),
                expected,
                "{names:?} in one call"
            );
            let (last, folders) = names.split_last().unwrap();
            assert_eq!(
                read(root.open_stepwise(folders, last)),
                expected,
                "{names:?} step by step"
            );
        }
        for bad in [&[][..], &[os("bucket"), os("..")][..], &[os("a/b")][..]] {
            assert!(root.open_beneath(bad).is_err(), "{bad:?}");
        }
    }

    /// A file opened in a folder entered before the folder was swapped for
    /// a link is the file of the folder that was entered.
    #[test]
    fn a_file_is_read_from_the_folder_entered_not_from_a_link_swapped_in() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("a.dcm"), b"outside").unwrap();
        let root = Folder::root(&dir.path().join("s3")).unwrap();
        let series = root.descend([os("bucket"), os("series")]).unwrap();
        let series_path = dir.path().join("s3/bucket/series");
        std::fs::write(series_path.join("a.dcm"), b"inside").unwrap();
        std::fs::rename(&series_path, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &series_path).unwrap();
        let mut read = String::new();
        io::Read::read_to_string(&mut series.open_file(os("a.dcm")).unwrap(), &mut read).unwrap();
        assert_eq!(read, "inside");
        series.write_file(os("b.dcm"), b"written").unwrap();
        assert!(
            !outside.join("b.dcm").exists(),
            "nothing reached the link's target"
        );
        assert_eq!(
            std::fs::read(dir.path().join("moved/b.dcm")).unwrap(),
            b"written"
        );
        // Entered again, the swapped path is refused.
        let bucket = root.enter(os("bucket"), false).unwrap();
        let error = bucket.enter(os("series"), false).unwrap_err();
        assert!(is_link_refusal(&error), "{error}");
    }

    #[test]
    fn a_link_at_a_written_file_name_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"precious").unwrap();
        let root = Folder::root(&dir.path().join("s3")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("s3/out.json")).unwrap();
        let error = root.write_file(os("out.json"), b"job output").unwrap_err();
        assert!(is_link_refusal(&error), "{error}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        root.write_file(os("fresh.json"), b"one").unwrap();
        root.write_file(os("fresh.json"), b"two").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("s3/fresh.json")).unwrap(),
            b"two"
        );
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
