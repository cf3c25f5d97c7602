//! The temporary files and folders this process is writing, so that a process told to stop leaves
//! none behind.
//!
//! Stopping is a race: the thread that handles the signal removes a temporary folder while the thread
//! writing it goes on and creates a file inside (a CI run saw `checkpoint.tmp/.state.json.<pid>.tmp`
//! left behind). So [`InFlight::stop`] first closes the gate (a thread that starts a new write from then
//! on waits until the process exits), then waits until every write under way has finished or its
//! thread waits at the gate, and only then removes what is left. Nothing can be written after that.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

/// How long [`InFlight::stop`] waits for the writes under way to finish (a checkpoint is written in
/// well under a second; a write hung on a dead network disk is given up and its file removed anyway).
pub const STOP_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    /// Each temporary path being written, with the thread writing it.
    writing: Vec<(PathBuf, ThreadId)>,
    /// Threads waiting at the closed gate: they write nothing more.
    held: Vec<ThreadId>,
    stopping: bool,
}

impl State {
    /// Whether no thread can write to a tracked path any more.
    fn settled(&self) -> bool {
        self.writing.iter().all(|(_, t)| self.held.contains(t))
    }
}

/// A register of temporary paths being written (the process has one, [`super::IN_FLIGHT`]; tests make
/// their own).
pub struct InFlight {
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl InFlight {
    /// An empty register, writes allowed.
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                writing: Vec::new(),
                held: Vec::new(),
                stopping: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `path` as being written by this thread until the returned guard is dropped (after the
    /// rename into place, or the removal on failure). Once [`stop`](Self::stop) has been called, this
    /// never returns: the process is about to exit, and the write must not start.
    pub fn begin(&self, path: &Path) -> Writing<'_> {
        let mut state = self.lock();
        if state.stopping {
            state.held.push(std::thread::current().id());
            self.changed.notify_all();
            drop(state);
            loop {
                std::thread::park();
            }
        }
        state.writing.push((path.to_path_buf(), std::thread::current().id()));
        Writing {
            register: self,
            path: path.to_path_buf(),
        }
    }

    /// Closes the gate, waits (at most `wait`) until no thread can write any more, and removes every
    /// temporary file and folder still recorded. For the thread that handles a stop signal, which then
    /// exits the process.
    pub fn stop(&self, wait: Duration) {
        let mut state = self.lock();
        state.stopping = true;
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, wait, |s| !s.settled())
            .unwrap_or_else(|p| p.into_inner());
        for (path, _) in std::mem::take(&mut state.writing) {
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
    }

    /// Whether [`stop`](Self::stop) has been called.
    pub fn stopping(&self) -> bool {
        self.lock().stopping
    }
}

/// A temporary path being written (see [`InFlight::begin`]); forgotten when dropped.
#[must_use = "the path counts as written only while the guard lives"]
pub struct Writing<'a> {
    register: &'a InFlight,
    path: PathBuf,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut state = self.register.lock();
        let me = std::thread::current().id();
        if let Some(i) = state.writing.iter().position(|(p, t)| *p == self.path && *t == me) {
            state.writing.remove(i);
        }
        self.register.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rechroma-in-flight-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The race a CI run lost: a folder being written is removed while its writer goes on to write a
    /// file inside. The writer must be held at its next write, and the folder must be gone for good.
    #[test]
    fn a_stop_during_a_folder_write_leaves_nothing_and_lets_nothing_be_written_after() {
        let dir = scratch("folder");
        let tmp = dir.join("checkpoint.tmp");
        let register: &'static InFlight = Box::leak(Box::new(InFlight::new()));
        let (started, on_start) = std::sync::mpsc::channel();
        let writer = {
            let tmp = tmp.clone();
            std::thread::spawn(move || {
                let _folder = register.begin(&tmp);
                std::fs::create_dir(&tmp).unwrap();
                started.send(()).unwrap();
                // Still writing when the stop comes; the next file is started after it.
                wait_for(|| register.stopping());
                std::thread::sleep(Duration::from_millis(50));
                let file = tmp.join(".state.json.tmp");
                let _file = register.begin(&file);
                std::fs::write(&file, b"{}").unwrap();
                unreachable!("a write began after the stop");
            })
        };
        on_start.recv().unwrap();
        let t = Instant::now();
        register.stop(STOP_WAIT);
        assert!(t.elapsed() < STOP_WAIT, "the held writer was seen: no need to time out");
        assert!(!tmp.exists(), "the temporary folder is removed");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!tmp.exists(), "and nothing recreated it");
        assert!(!writer.is_finished(), "the writer is held at the gate");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write under way when the stop comes is waited for: the finished file stays, nothing temporary does.
    #[test]
    fn a_write_under_way_is_finished_before_the_stop_removes_anything() {
        let dir = scratch("file");
        let (tmp, dest) = (dir.join(".photo.png.tmp"), dir.join("photo.png"));
        let register = Arc::new(InFlight::new());
        let (started, on_start) = std::sync::mpsc::channel();
        let writer = {
            let (register, tmp, dest) = (register.clone(), tmp.clone(), dest.clone());
            std::thread::spawn(move || {
                let guard = register.begin(&tmp);
                std::fs::write(&tmp, b"half").unwrap();
                started.send(()).unwrap();
                wait_for(|| register.stopping());
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(&tmp, b"a whole photo").unwrap();
                std::fs::rename(&tmp, &dest).unwrap();
                drop(guard);
            })
        };
        on_start.recv().unwrap();
        register.stop(STOP_WAIT);
        writer.join().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"a whole photo");
        assert!(!tmp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A writer stuck past the wait does not keep the process from stopping; its file is removed.
    #[test]
    fn a_stuck_write_is_given_up_after_the_wait() {
        let dir = scratch("stuck");
        let tmp = dir.join(".stuck.tmp");
        let register: &'static InFlight = Box::leak(Box::new(InFlight::new()));
        let (started, on_start) = std::sync::mpsc::channel();
        let path = tmp.clone();
        std::thread::spawn(move || {
            let _guard = register.begin(&path);
            std::fs::write(&path, b"half").unwrap();
            started.send(()).unwrap();
            loop {
                std::thread::park();
            }
        });
        on_start.recv().unwrap();
        let t = Instant::now();
        register.stop(Duration::from_millis(100));
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(!tmp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
