//! The mapping file kept current while bookhub runs: [`LiveMapping`] holds the mapping in use,
//! re-reads the file when it changes or on SIGHUP ([`LiveMapping::watch`]), and keeps the
//! previous mapping when a new file does not validate — saying why in the log and in
//! [`LiveMapping::status`], which staff read at `GET /v1/crm/mapping`.
//!
//! The watcher watches the file's directory rather than the file, so that an editor that saves
//! by writing a new file and renaming it over the old one is noticed; events for other files
//! are ignored, and a burst of events (one save is several) is taken as one change after
//! [`DEBOUNCE`] of quiet. A mapping swapped in by a symlink flip of the directory
//! (Kubernetes ConfigMaps) is not seen by name: send SIGHUP after such an update.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;

use super::mapping::{CrmMapping, FieldDescription, MappingFileError};

/// How long the file must be quiet after a change before it is read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// The mapping in use, shared: clones see the same mapping and the same reloads.
#[derive(Clone)]
pub struct LiveMapping {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    state: RwLock<State>,
}

struct State {
    mapping: Arc<CrmMapping>,
    origin: Origin,
    loaded_at: DateTime<Utc>,
    last_error: Option<LoadError>,
}

/// Where the mapping in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The configured file.
    File,
    /// The built-in default: the configured file did not exist.
    Builtin,
}

/// The last time the file was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    pub message: String,
    pub at: DateTime<Utc>,
}

/// What staff see of the mapping: where it is read from, what is in use since when, and the
/// last refusal if the file was refused after that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingStatus {
    pub path: String,
    pub origin: Origin,
    pub loaded_at: DateTime<Utc>,
    pub time_zone: String,
    pub fields: Vec<FieldDescription>,
    /// Set when the file was refused since `loaded_at`: the mapping in use is the earlier one.
    pub last_error: Option<LoadError>,
}

impl std::fmt::Debug for LiveMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMapping").field("path", &self.inner.path).field("origin", &self.state().origin).finish()
    }
}

impl LiveMapping {
    /// Reads the mapping at start-up. A file that does not validate (or cannot be read) is an
    /// error for start-up to report; a file that does not exist gives the built-in default,
    /// with a log line.
    pub fn load(path: &Path) -> Result<LiveMapping, MappingFileError> {
        let (mapping, origin) = match read(path)? {
            Some(mapping) => (mapping, Origin::File),
            None => {
                tracing::info!(path = %path.display(), "no CRM mapping file; using the built-in default");
                (CrmMapping::builtin(), Origin::Builtin)
            }
        };
        let state = State { mapping: Arc::new(mapping), origin, loaded_at: Utc::now(), last_error: None };
        Ok(LiveMapping { inner: Arc::new(Inner { path: path.to_owned(), state: RwLock::new(state) }) })
    }

    /// The mapping in use. Hold it for one booking's record, then ask again.
    pub fn current(&self) -> Arc<CrmMapping> {
        Arc::clone(&self.state().mapping)
    }

    /// Reads the file again. A good file replaces the mapping; a bad one — or a file gone that
    /// was in use — keeps the previous mapping, and is recorded for [`LiveMapping::status`] and
    /// logged here (callers need not log the returned error again). While the built-in default
    /// is in use, a still missing file changes nothing.
    pub fn reload(&self) -> Result<(), MappingFileError> {
        let path = &self.inner.path;
        let read = read(path).and_then(|mapping| match mapping {
            Some(mapping) => Ok(Some(mapping)),
            None if self.state().origin == Origin::Builtin => Ok(None),
            None => {
                Err(MappingFileError::Read { path: path.display().to_string(), source: ErrorKind::NotFound.into() })
            }
        });
        let mut state = self.inner.state.write().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(Some(mapping)) => {
                tracing::info!(path = %path.display(), fields = mapping.describe().fields.len(), "CRM mapping loaded");
                *state =
                    State { mapping: Arc::new(mapping), origin: Origin::File, loaded_at: Utc::now(), last_error: None };
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "CRM mapping file refused; the previous mapping stays in use");
                state.last_error = Some(LoadError { message: error.to_string(), at: Utc::now() });
                Err(error)
            }
        }
    }

    /// What is in use, for staff.
    pub fn status(&self) -> MappingStatus {
        let state = self.state();
        let description = state.mapping.describe();
        MappingStatus {
            path: self.inner.path.display().to_string(),
            origin: state.origin,
            loaded_at: state.loaded_at,
            time_zone: description.time_zone.clone(),
            fields: description.fields.clone(),
            last_error: state.last_error.clone(),
        }
    }

    /// Starts reloading on every change of the file and on every SIGHUP, until the handle is
    /// dropped. Call it within a Tokio runtime. Should the file watcher or the signal not start
    /// (no inotify watches left, a directory that does not exist), that is logged and the other
    /// still runs.
    pub fn watch(&self) -> WatchHandle {
        let (changed, changes) = mpsc::channel(1);
        let watcher = self.watch_file(changed).map_err(|error| {
            let path = self.inner.path.display();
            tracing::warn!(path = %path, error = %error, "cannot watch the CRM mapping file; reload it with SIGHUP");
        });
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(
            |error| tracing::warn!(error = %error, "cannot listen for SIGHUP; the CRM mapping reloads on change only"),
        );
        let task = tokio::spawn(reload_on(self.clone(), changes, hangup.ok()));
        WatchHandle { watcher: watcher.ok(), task }
    }

    /// A watcher of the file's directory that signals each change of the file itself.
    fn watch_file(&self, changed: mpsc::Sender<()>) -> notify::Result<RecommendedWatcher> {
        let path = &self.inner.path;
        let name = path.file_name().map(ToOwned::to_owned);
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(event.kind) && event.paths.iter().any(|p| p.file_name() == name.as_deref()) => {
                // Full means a reload is already due, which will read this change too.
                let _ = changed.try_send(());
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "watching the CRM mapping file"),
        })?;
        watcher.watch(directory, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The file's mapping, `None` when it does not exist.
fn read(path: &Path) -> Result<Option<CrmMapping>, MappingFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => CrmMapping::parse(&text).map(Some),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MappingFileError::Read { path: path.display().to_string(), source }),
    }
}

/// Whether an event may have changed the file. Reads and opens are not changes (reading the
/// file to reload it makes them).
fn is_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Reloads after each quiet-ended burst of file changes and after each SIGHUP.
async fn reload_on(
    live: LiveMapping,
    mut changes: mpsc::Receiver<()>,
    mut hangup: Option<tokio::signal::unix::Signal>,
) {
    loop {
        let cause = tokio::select! {
            Some(()) = changes.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
                "file changed"
            }
            Some(()) = next_hangup(&mut hangup) => "SIGHUP",
            else => return,
        };
        tracing::debug!(cause, "reloading the CRM mapping");
        let live = live.clone();
        // The outcome is logged and recorded by `reload`.
        let _ = tokio::task::spawn_blocking(move || live.reload()).await;
    }
}

async fn next_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => None,
    }
}

/// Keeps [`LiveMapping::watch`] running; dropping it stops the watcher and the SIGHUP listener.
pub struct WatchHandle {
    watcher: Option<RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").field("watching_file", &self.watcher.is_some()).finish()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
