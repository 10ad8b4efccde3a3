//! A disk that fails on demand: a FUSE file system passing every call
//! through to a temporary directory, until a test switches on I/O errors.
//!
//! A full disk is easy to make (a small tmpfs); a disk that answers `EIO` is
//! not. This one answers it to the very system calls a program makes on its
//! files (`pwrite`, `ftruncate`, `fsync`), while reads keep working, as on a
//! disk whose writes fail. Writes are not cached by the kernel on the way
//! (FUSE writes through unless asked otherwise), so the error reaches the
//! program at once rather than at some later writeback.
//!
//! It holds what a data directory needs: directories, and files created,
//! read and written in place; no links, no renames. It runs on a thread of
//! the test process and is mounted with the mount system call on /dev/fuse,
//! which takes root but neither libfuse nor fusermount; it is unmounted when
//! the value is dropped, also when the test panics.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use tempfile::TempDir;

use crate::program::skip;

/// A mounted file system whose writes fail while [`FaultyDisk::fail_writes`]
/// says so. Unmounted when dropped.
///
/// ```no_run
/// let Some(disk) = tidings_testkit::FaultyDisk::mount() else { return };
/// std::fs::write(disk.path().join("a"), "kept").unwrap();
/// disk.fail_writes(true);
/// assert!(std::fs::write(disk.path().join("a"), "lost").is_err());
/// ```
pub struct FaultyDisk {
    session: Option<BackgroundSession>,
    failing: Arc<AtomicBool>,
    mount: TempDir,
    /// Where the files really are; removed after the unmount.
    _backing: TempDir,
}

impl FaultyDisk {
    /// Mounts an empty disk on a new temporary directory. Where FUSE cannot
    /// be mounted (no /dev/fuse, not root), says so and returns None, so the
    /// test can return early; panics instead when `TIDINGS_TEST_REQUIRE_ALL=1`.
    pub fn mount() -> Option<FaultyDisk> {
        let backing = tempfile::tempdir().expect("a directory for the disk's files");
        let mount = tempfile::tempdir().expect("a mount point");
        let failing = Arc::new(AtomicBool::new(false));
        let files = Passthrough {
            failing: failing.clone(),
            inodes: Mutex::new(Inodes::new(backing.path())),
            open: Mutex::default(),
            next_handle: AtomicU64::new(1),
        };
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("tidings-faulty".into())];
        match fuser::spawn_mount(files, mount.path(), &config) {
            Ok(session) => Some(FaultyDisk {
                session: Some(session),
                failing,
                mount,
                _backing: backing,
            }),
            Err(error) => {
                skip(&format!(
                    "cannot mount a FUSE file system ({error}); it needs /dev/fuse and root"
                ));
                None
            }
        }
    }

    /// The disk's root directory.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }

    /// While on, every call that would change the disk fails with `EIO`:
    /// writes, truncation, `fsync`, `fallocate`, creating and removing.
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl Drop for FaultyDisk {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if session.umount_and_join().is_err() {
            // Busy: some process still has a file open on it. Detached, the
            // mount goes away by itself once that process lets go.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.mount.path())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The kernel asks again on every call, so it always sees the backing
/// directory as it is.
const TTL: Duration = Duration::ZERO;

/// Free space reported: far more than any test writes, so that a program
/// that checks before writing never takes the disk for a full one.
const FREE_BLOCKS: u64 = 1 << 24;
const BLOCK_SIZE: u32 = 4096;

/// Passes every call through to the backing directory, failing those that
/// change it while `failing` is set.
struct Passthrough {
    failing: Arc<AtomicBool>,
    inodes: Mutex<Inodes>,
    /// The backing files behind the kernel's open file handles.
    open: Mutex<HashMap<u64, File>>,
    next_handle: AtomicU64,
}

/// Inode numbers for the paths the kernel has looked up; the root is 1.
struct Inodes {
    paths: HashMap<u64, PathBuf>,
    numbers: HashMap<PathBuf, u64>,
    next: u64,
}

impl Inodes {
    fn new(root: &Path) -> Inodes {
        let root = root.to_path_buf();
        Inodes {
            paths: HashMap::from([(INodeNo::ROOT.0, root.clone())]),
            numbers: HashMap::from([(root, INodeNo::ROOT.0)]),
            next: INodeNo::ROOT.0 + 1,
        }
    }

    fn number(&mut self, path: &Path) -> u64 {
        if let Some(&number) = self.numbers.get(path) {
            return number;
        }
        let number = self.next;
        self.next += 1;
        self.paths.insert(number, path.to_path_buf());
        self.numbers.insert(path.to_path_buf(), number);
        number
    }

    fn remove(&mut self, path: &Path) {
        if let Some(number) = self.numbers.remove(path) {
            self.paths.remove(&number);
        }
    }
}

impl Passthrough {
    fn writable(&self) -> Result<(), Errno> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        let inodes = self.inodes.lock().unwrap();
        inodes.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// The attributes of `path`, under the inode number it goes by here.
    fn entry(&self, path: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(path)?;
        let number = self.inodes.lock().unwrap().number(path);
        Ok(attributes(number, &meta))
    }

    fn with_file<T>(
        &self,
        fh: FileHandle,
        run: impl FnOnce(&File) -> io::Result<T>,
    ) -> Result<T, Errno> {
        let open = self.open.lock().unwrap();
        let file = open.get(&fh.0).ok_or(Errno::EBADF)?;
        Ok(run(file)?)
    }

    /// Runs `change` on an open file, or fails with `EIO` while failing.
    fn change_file(
        &self,
        fh: FileHandle,
        change: impl FnOnce(&File) -> io::Result<()>,
    ) -> Result<(), Errno> {
        self.writable()?;
        self.with_file(fh, change)
    }

    fn handle(&self, file: File) -> FileHandle {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap().insert(handle, file);
        FileHandle(handle)
    }
}

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name).and_then(|path| self.entry(&path)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(error) => reply.error(error),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let meta = match fh {
            Some(fh) => self.with_file(fh, File::metadata),
            None => self
                .path(ino)
                .and_then(|path| fs::symlink_metadata(path).map_err(Errno::from)),
        };
        match meta {
            Ok(meta) => reply.attr(&TTL, &attributes(ino.0, &meta)),
            Err(error) => reply.error(error),
        }
    }

    /// Changes the size and the mode; owners and times stay as they are,
    /// which nothing on this disk minds.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = || -> Result<FileAttr, Errno> {
            self.writable()?;
            let path = self.path(ino)?;
            match (size, fh) {
                (Some(size), Some(fh)) => self.with_file(fh, |file| file.set_len(size))?,
                (Some(size), None) => OpenOptions::new().write(true).open(&path)?.set_len(size)?,
                (None, _) => {}
            }
            if let Some(mode) = mode {
                fs::set_permissions(&path, Permissions::from_mode(mode & 0o7777))?;
            }
            Ok(attributes(ino.0, &fs::symlink_metadata(&path)?))
        };
        match set() {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(error) => reply.error(error),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let make = || -> Result<FileAttr, Errno> {
            self.writable()?;
            let path = self.child(parent, name)?;
            DirBuilder::new().mode(mode & !umask).create(&path)?;
            self.entry(&path)
        };
        match make() {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(error) => reply.error(error),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let remove = || -> Result<(), Errno> {
            self.writable()?;
            let path = self.child(parent, name)?;
            fs::remove_file(&path)?;
            self.inodes.lock().unwrap().remove(&path);
            Ok(())
        };
        answer(reply, remove());
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let open = || -> Result<File, Errno> {
            let path = self.path(ino)?;
            Ok(OpenOptions::new().read(true).write(write).open(path)?)
        };
        match open() {
            Ok(file) => reply.opened(self.handle(file), FopenFlags::empty()),
            Err(error) => reply.error(error),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        // The kernel looked the name up first and found nothing: this is a
        // new file whatever the flags say.
        let create = || -> Result<(FileAttr, File), Errno> {
            self.writable()?;
            let path = self.child(parent, name)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode & !umask)
                .open(&path)?;
            Ok((self.entry(&path)?, file))
        };
        match create() {
            Ok((attr, file)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                self.handle(file),
                FopenFlags::empty(),
            ),
            Err(error) => reply.error(error),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let read = self.with_file(fh, |file| {
            let mut data = vec![0; size as usize];
            let mut filled = 0;
            while filled < data.len() {
                match file.read_at(&mut data[filled..], offset + filled as u64)? {
                    0 => break,
                    n => filled += n,
                }
            }
            data.truncate(filled);
            Ok(data)
        });
        match read {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(error),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.change_file(fh, |file| file.write_all_at(data, offset)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(error) => reply.error(error),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        answer(
            reply,
            self.change_file(fh, |file| {
                if datasync {
                    file.sync_data()
                } else {
                    file.sync_all()
                }
            }),
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let list = || -> Result<Vec<(u64, FileType, PathBuf)>, Errno> {
            let dir = self.path(ino)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = FileType::from_std(entry.file_type()?).unwrap_or(FileType::RegularFile);
                let number = self.inodes.lock().unwrap().number(&entry.path());
                entries.push((number, kind, entry.file_name().into()));
            }
            Ok(entries)
        };
        match list() {
            Ok(entries) => {
                // An entry's offset is where the next call starts.
                for (at, (number, kind, name)) in
                    entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(number), at as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(error) => reply.error(error),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let synced = || -> Result<(), Errno> {
            self.writable()?;
            Ok(File::open(self.path(ino)?)?.sync_all()?)
        };
        answer(reply, synced());
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(
            FREE_BLOCKS,
            FREE_BLOCKS,
            FREE_BLOCKS,
            1 << 20,
            1 << 20,
            BLOCK_SIZE,
            255,
            BLOCK_SIZE,
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let allocated = self.change_file(fh, |file| {
            // SAFETY: the descriptor is open for as long as `file` lives.
            let done =
                unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, length as i64) };
            match done {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        });
        answer(reply, allocated);
    }
}

/// Answers a call that returns nothing but success or an error.
fn answer(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(error),
    }
}

fn attributes(number: u64, meta: &Metadata) -> FileAttr {
    let changed = UNIX_EPOCH + Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
    FileAttr {
        ino: INodeNo(number),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: meta.accessed().unwrap_or(UNIX_EPOCH),
        mtime: meta.modified().unwrap_or(UNIX_EPOCH),
        ctime: changed,
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}
