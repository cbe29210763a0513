//! The tray icon and its menu, rendered from [`porthole_app::presenter::TrayMenu`] (the
//! same data the `tray_menu` command returns, so tests see what the tray shows); a menu
//! item's id is a [`TrayCommand`], read back when it is clicked.

use std::sync::{Arc, Mutex};

use porthole_app::presenter::{TrayCommand, TrayItem, TrayMenu, TrayState, TunnelItem};
use porthole_app::App;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};

const TRAY_ID: &str = "porthole";

/// The last menu rendered, so the tray is only rebuilt when what it shows changes.
#[derive(Default)]
pub struct TrayCache(Mutex<Option<TrayMenu>>);

fn icon(state: TrayState) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match state {
        TrayState::Idle => include_bytes!("../../icons/tray-idle.png"),
        TrayState::Active => include_bytes!("../../icons/tray-active.png"),
        TrayState::Error => include_bytes!("../../icons/tray-error.png"),
    };
    Image::from_bytes(bytes)
}

fn render(app: &AppHandle, model: &TrayMenu) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "title",
        &model.title,
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for tunnel in &model.tunnels {
        let sub = Submenu::with_id(
            app,
            format!("tunnel:{}", tunnel.id),
            format!("{}  {}", tunnel.label, tunnel.address),
            true,
        )?;
        for item in &tunnel.items {
            sub.append(&MenuItem::with_id(
                app,
                TrayCommand::Tunnel(tunnel.id, *item).id(),
                item.label(),
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&sub)?;
    }
    if !model.tunnels.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    for item in &model.actions {
        menu.append(&MenuItem::with_id(
            app,
            TrayCommand::App(*item).id(),
            item.label(),
            true,
            None::<&str>,
        )?)?;
    }
    Ok(menu)
}

/// Creates the tray icon with the current menu.
pub fn create(app: &AppHandle, engine: &Arc<App>) -> tauri::Result<TrayIcon> {
    let model = engine.tray_menu();
    let menu = render(app, &model)?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.state)?)
        .tooltip(&model.title)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::DoubleClick {
                button: MouseButton::Left,
                ..
            } = event
            {
                crate::show_main_window(tray.app_handle());
            }
            let _ = MouseButtonState::Up;
        })
        .build(app)?;
    if let Some(cache) = app.try_state::<TrayCache>() {
        *cache.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    }
    Ok(tray)
}

/// Re-renders the tray if what it shows changed.
pub fn refresh(app: &AppHandle, engine: &App) {
    let model = engine.tray_menu();
    let Some(cache) = app.try_state::<TrayCache>() else {
        return;
    };
    {
        let mut last = cache.0.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() == Some(&model) {
            return;
        }
        *last = Some(model.clone());
    }
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let result = render(app, &model).and_then(|menu| {
        tray.set_menu(Some(menu))?;
        tray.set_icon(Some(icon(model.state)?))?;
        tray.set_tooltip(Some(&model.title))
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot update the tray");
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    let Some(porthole) = app.try_state::<Arc<App>>().map(|e| e.inner().clone()) else {
        return;
    };
    let Some(command) = TrayCommand::parse(id) else {
        // The title line, or an id this build does not know: nothing to do.
        tracing::debug!(id, "tray: not a command");
        return;
    };
    match command {
        TrayCommand::App(TrayItem::Show) => crate::show_main_window(app),
        TrayCommand::App(TrayItem::Quit) => crate::quit(app.clone()),
        TrayCommand::App(TrayItem::StopAll) => {
            tauri::async_runtime::spawn(async move { porthole.stop_all().await });
        }
        TrayCommand::Tunnel(id, TunnelItem::Stop) => {
            tauri::async_runtime::spawn(async move {
                porthole.stop_tunnel(id).await;
            });
        }
        TrayCommand::Tunnel(id, TunnelItem::Open) => {
            if let Err(e) = porthole.open_tunnel(id) {
                tracing::warn!(error = %e, "tray: open failed");
            }
        }
        TrayCommand::Tunnel(id, TunnelItem::CopyAddress) => match porthole.tunnel_address(id) {
            Ok(address) => crate::copy_to_clipboard(app, &address),
            Err(e) => tracing::warn!(error = %e, "tray: copy failed"),
        },
    }
}
