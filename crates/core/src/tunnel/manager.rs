//! [`TunnelManager`]: every tunnel of the app, at most one per (endpoint, session, app),
//! with changes fanned out on a broadcast channel that the GUI turns into events. The
//! tunnels of one account on one endpoint share one [`SessionWatch`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{
    PeerCheck, SessionWatch, Tunnel, TunnelError, TunnelOptions, TunnelStatus, TunnelTarget,
};

/// What identifies a tunnel: one per app of a session on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TunnelKey {
    /// The endpoint URL.
    pub endpoint: String,
    /// The session id.
    pub session_id: String,
    /// The app name.
    pub app: String,
}

/// A tunnel as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelInfo {
    /// Stable id for this tunnel's lifetime.
    pub id: u64,
    /// Its key.
    pub key: TunnelKey,
    /// The session's name.
    pub session_name: String,
    /// The app's protocol (`http`, `tcp`, ...).
    pub protocol: String,
    /// Where local clients connect.
    pub local_addr: SocketAddr,
    /// Web apps: the URL a browser opens, on the tunnel's own `*.localhost` name.
    pub url: Option<String>,
    /// Who may connect.
    pub peer_check: PeerCheck,
    /// State and counters.
    pub status: TunnelStatus,
}

/// A change to the set of tunnels.
// Events are cloned into every broadcast receiver anyway; boxing the info would add an
// allocation per event without saving a copy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TunnelEvent {
    /// A tunnel started or its status changed.
    Updated(TunnelInfo),
    /// A tunnel was stopped and is gone.
    Removed {
        /// Its id.
        id: u64,
    },
}

struct Entry {
    info: Arc<Mutex<TunnelInfo>>,
    tunnel: Tunnel,
    /// Forwards status changes to the broadcast; ends when the tunnel's status does.
    forwarder: tokio::task::JoinHandle<()>,
    /// Keeps the account's session watch registered while this tunnel runs.
    _watch: Option<Arc<SessionWatch>>,
}

impl Entry {
    /// Stops the tunnel and waits until its last status update has been broadcast, so a
    /// `Removed` sent afterwards is really the last event about it.
    async fn stop(self) {
        self.tunnel.stop().await;
        let _ = self.forwarder.await;
    }
}

#[derive(Default)]
struct Slot {
    entry: Option<Entry>,
}

/// Owns every running tunnel. Cheap to share behind an `Arc`; no global state.
pub struct TunnelManager {
    slots: Mutex<HashMap<TunnelKey, Arc<tokio::sync::Mutex<Slot>>>>,
    /// One session watch per (endpoint, account), while a tunnel of it runs: a weak
    /// handle, so the watch ends with its last tunnel.
    watches: Mutex<HashMap<(String, String), std::sync::Weak<SessionWatch>>>,
    events: broadcast::Sender<TunnelEvent>,
    root: CancellationToken,
    next_id: std::sync::atomic::AtomicU64,
}

impl Default for TunnelManager {
    fn default() -> Self {
        Self::new()
    }
}

impl TunnelManager {
    /// An empty manager.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(256);
        TunnelManager {
            slots: Mutex::new(HashMap::new()),
            watches: Mutex::new(HashMap::new()),
            events,
            root: CancellationToken::new(),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Changes from now on. A lagging receiver misses intermediate updates but can
    /// always resynchronise with [`TunnelManager::list`].
    pub fn subscribe(&self) -> broadcast::Receiver<TunnelEvent> {
        self.events.subscribe()
    }

    fn slot(&self, key: &TunnelKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// Starts the tunnel for `target`, or returns the running one for the same key.
    /// Concurrent calls for one key start it once.
    pub async fn open(
        &self,
        target: TunnelTarget,
        bind: SocketAddr,
        options: TunnelOptions,
    ) -> Result<TunnelInfo, TunnelError> {
        let key = TunnelKey {
            endpoint: target.client.endpoint().to_string(),
            session_id: target.session.id.clone(),
            app: target.app.name.clone(),
        };
        let slot = self.slot(&key);
        let mut slot = slot.lock().await;
        if let Some(entry) = &slot.entry {
            if entry.tunnel.status().borrow().state.is_running() {
                return Ok(lock(&entry.info).clone());
            }
            let id = lock(&entry.info).id;
            if let Some(old) = slot.entry.take() {
                old.stop().await;
            }
            let _ = self.events.send(TunnelEvent::Removed { id });
        }
        let session_name = target.session.name.clone();
        let protocol = target.app.protocol.as_str().to_owned();
        let watch = options
            .session_check
            .map(|interval| self.session_watch(&target, interval));
        let tunnel =
            Tunnel::start_watched(target, bind, options, &self.root, watch.as_deref().cloned())
                .await?;
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut status = tunnel.status();
        let info = Arc::new(Mutex::new(TunnelInfo {
            id,
            key,
            session_name,
            protocol,
            local_addr: tunnel.local_addr(),
            url: tunnel.url().map(str::to_owned),
            peer_check: tunnel.peer_check(),
            status: status.borrow_and_update().clone(),
        }));
        let first = lock(&info).clone();
        let _ = self.events.send(TunnelEvent::Updated(first.clone()));
        // Forward every status change until the tunnel's status sender is gone.
        let events = self.events.clone();
        let shared = info.clone();
        let forwarder = tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let snapshot = {
                    let mut info = lock(&shared);
                    info.status = status.borrow_and_update().clone();
                    info.clone()
                };
                let _ = events.send(TunnelEvent::Updated(snapshot));
            }
        });
        slot.entry = Some(Entry {
            info,
            tunnel,
            forwarder,
            _watch: watch,
        });
        Ok(first)
    }

    /// The session watch of `target`'s account, started if none runs; it lists with
    /// `target`'s client from now on (the newest sign-in).
    fn session_watch(&self, target: &TunnelTarget, interval: Duration) -> Arc<SessionWatch> {
        let key = (
            target.client.endpoint().to_string(),
            target.client.account().to_owned(),
        );
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        watches.retain(|_, w| w.strong_count() > 0);
        if let Some(watch) = watches.get(&key).and_then(std::sync::Weak::upgrade) {
            watch.use_client(target.client.clone());
            return watch;
        }
        let watch = Arc::new(SessionWatch::start(target.client.clone(), interval));
        watches.insert(key, Arc::downgrade(&watch));
        watch
    }

    /// Every slot, with or without a tunnel in it.
    fn all_slots(&self) -> Vec<Arc<tokio::sync::Mutex<Slot>>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.values().cloned().collect()
    }

    /// Every tunnel, oldest first.
    pub fn list(&self) -> Vec<TunnelInfo> {
        let slots = self.all_slots();
        let mut out: Vec<TunnelInfo> = slots
            .iter()
            .filter_map(|slot| {
                let slot = slot.try_lock().ok()?;
                slot.entry.as_ref().map(|e| lock(&e.info).clone())
            })
            .collect();
        out.sort_by_key(|t| t.id);
        out
    }

    /// Stops the tunnel with `id`: closes its connections and releases its port.
    /// Returns whether it existed.
    pub async fn stop(&self, id: u64) -> bool {
        let slots = self.all_slots();
        for slot in slots {
            let mut slot = slot.lock().await;
            let matches = slot.entry.as_ref().is_some_and(|e| lock(&e.info).id == id);
            if matches {
                if let Some(entry) = slot.entry.take() {
                    entry.stop().await;
                }
                let _ = self.events.send(TunnelEvent::Removed { id });
                return true;
            }
        }
        false
    }

    /// Stops every tunnel (Quit, profile switch).
    pub async fn stop_all(&self) {
        let ids: Vec<u64> = self.list().iter().map(|t| t.id).collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

impl Drop for TunnelManager {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

fn lock(info: &Mutex<TunnelInfo>) -> std::sync::MutexGuard<'_, TunnelInfo> {
    info.lock().unwrap_or_else(|p| p.into_inner())
}
