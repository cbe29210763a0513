//! The running tunnels as the window and the tray use them: list, stop, copy, open again,
//! and the tray's model ([`crate::presenter::TrayMenu`]).

use porthole_core::tunnel::{TunnelEvent, TunnelInfo};

use crate::error::UiError;
use crate::presenter::{self, TrayMenu, TunnelEventView, TunnelView};
use crate::{lock, App};

impl App {
    /// Every tunnel, as the window shows it.
    pub fn list_tunnels(&self) -> Vec<TunnelView> {
        self.tunnels
            .list()
            .iter()
            .map(presenter::tunnel_view)
            .collect()
    }

    /// What the window hears of a tunnel manager event; a removed tunnel's SSH key is
    /// removed with it.
    pub fn on_tunnel_event(&self, event: &TunnelEvent) -> TunnelEventView {
        match event {
            TunnelEvent::Updated(info) => TunnelEventView::Updated(presenter::tunnel_view(info)),
            TunnelEvent::Removed { id } => {
                self.forget_key(*id);
                TunnelEventView::Removed { id: *id }
            }
        }
    }

    /// Stops one tunnel (closing its connections, releasing its port, removing its key).
    pub async fn stop_tunnel(&self, id: u64) -> bool {
        let existed = self.tunnels.stop(id).await;
        self.forget_key(id);
        tracing::info!(id, existed, "tunnel stopped");
        existed
    }

    /// Stops every tunnel and removes every key.
    pub async fn stop_all(&self) {
        self.tunnels.stop_all().await;
        lock(&self.keys).clear();
        tracing::info!("all tunnels stopped");
    }

    /// Removes the SSH key kept for tunnel `id`, if any (when the tunnel is gone).
    pub fn forget_key(&self, id: u64) {
        if lock(&self.keys).remove(&id).is_some() {
            tracing::debug!(id, "ssh key removed");
        }
    }

    fn tunnel(&self, id: u64) -> Result<TunnelInfo, UiError> {
        self.tunnels
            .list()
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| UiError::new("no-tunnel", "that tunnel is no longer running"))
    }

    /// The URL (web apps) or local address of a running tunnel, for "Copy".
    pub fn tunnel_address(&self, id: u64) -> Result<String, UiError> {
        let tunnel = self.tunnel(id)?;
        Ok(tunnel
            .url
            .clone()
            .unwrap_or_else(|| tunnel.local_addr.to_string()))
    }

    /// Opens a running web tunnel's URL in the browser (the tray's "Open").
    pub fn open_tunnel(&self, id: u64) -> Result<(), UiError> {
        let tunnel = self.tunnel(id)?;
        if let Some(url) = &tunnel.url {
            self.launcher.open_url(url).map_err(|e| {
                UiError::new("browser", format!("could not open the browser ({e})"))
            })?;
        }
        Ok(())
    }

    /// The tray menu for the current tunnels (red while the account has an error).
    pub fn tray_menu(&self) -> TrayMenu {
        presenter::tray_menu(&self.tunnels.list(), self.endpoint_error().is_some())
    }
}
