//! The tray icon and its menu, rendered from [`porthole_core::catalog::TrayMenu`] (the
//! same data the `tray_menu` command returns, so tests see what the tray shows).

use std::sync::{Arc, Mutex};

use porthole_core::catalog::{TrayMenu, TrayState};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};

use crate::engine::Engine;

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
            let action = match *item {
                "Open" => "open",
                "Copy address" => "copy",
                _ => "stop",
            };
            sub.append(&MenuItem::with_id(
                app,
                format!("{action}:{}", tunnel.id),
                *item,
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&sub)?;
    }
    if !model.tunnels.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    for action in &model.actions {
        let id = match *action {
            "Stop all" => "stop-all",
            "Show Porthole" => "show",
            _ => "quit",
        };
        menu.append(&MenuItem::with_id(app, id, *action, true, None::<&str>)?)?;
    }
    Ok(menu)
}

/// Creates the tray icon with the current menu.
pub fn create(app: &AppHandle, engine: &Arc<Engine>) -> tauri::Result<TrayIcon> {
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
pub fn refresh(app: &AppHandle, engine: &Engine) {
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
    let Some(engine) = app.try_state::<Arc<Engine>>().map(|e| e.inner().clone()) else {
        return;
    };
    let (action, tunnel) = match id.split_once(':') {
        Some((action, n)) => (action, n.parse::<u64>().ok()),
        None => (id, None),
    };
    match (action, tunnel) {
        ("show", _) => crate::show_main_window(app),
        ("quit", _) => crate::quit(app.clone()),
        ("stop-all", _) => {
            tauri::async_runtime::spawn(async move { engine.stop_all().await });
        }
        ("stop", Some(id)) => {
            tauri::async_runtime::spawn(async move {
                engine.stop_tunnel(id).await;
            });
        }
        ("open", Some(id)) => {
            if let Err(e) = engine.open_tunnel(id) {
                tracing::warn!(error = %e, "tray: open failed");
            }
        }
        ("copy", Some(id)) => match engine.tunnel_address(id) {
            Ok(address) => crate::copy_to_clipboard(app, &address),
            Err(e) => tracing::warn!(error = %e, "tray: copy failed"),
        },
        _ => {}
    }
}
