//! The terminal that runs `ssh` for the desktop app: a command template the user can
//! edit, and a sensible default for the desktop in use.
//!
//! A template is split into words like a shell would (quotes and backslashes, no
//! expansion). `{args}` stands for the command's words, `{cmd}` for the whole command as
//! one shell-quoted string (for terminals that take `sh -c STRING`); with neither, the
//! command's words are appended, which suits `gnome-terminal --`, `konsole -e`,
//! `xterm -e` and `x-terminal-emulator -e`.

use porthole_core::ssh::shell_quote;

/// Why a terminal command template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A quote is not closed.
    #[error("a {0} quote is not closed")]
    UnclosedQuote(char),
    /// A backslash ends the text.
    #[error("it ends with a lone backslash")]
    TrailingBackslash,
    /// There is no program to run.
    #[error("it names no program")]
    Empty,
}

/// Splits `text` into words: whitespace separates, `'...'` is literal, `"..."` allows
/// `\"` and `\\`, a backslash outside quotes escapes the next character.
pub fn split_words(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(TemplateError::UnclosedQuote('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(TemplateError::UnclosedQuote('"')),
                        },
                        Some(c) => word.push(c),
                        None => return Err(TemplateError::UnclosedQuote('"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or(TemplateError::TrailingBackslash)?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The program and arguments that run `command` (program first) in a terminal described
/// by `template`.
pub fn terminal_argv(
    template: &str,
    command: &[String],
) -> Result<(String, Vec<String>), TemplateError> {
    let words = split_words(template)?;
    let mut argv: Vec<String> = Vec::with_capacity(words.len() + command.len());
    let mut placed = false;
    for word in words {
        match word.as_str() {
            "{args}" => {
                argv.extend(command.iter().cloned());
                placed = true;
            }
            "{cmd}" => {
                argv.push(
                    command
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                placed = true;
            }
            _ => argv.push(word),
        }
    }
    if !placed {
        argv.extend(command.iter().cloned());
    }
    if argv.is_empty() {
        return Err(TemplateError::Empty);
    }
    let program = argv.remove(0);
    if program.is_empty() {
        return Err(TemplateError::Empty);
    }
    Ok((program, argv))
}

/// The terminal template to use when the user set none: `$PORTHOLE_TERMINAL`, then the
/// desktop's own terminal (`$XDG_CURRENT_DESKTOP`), then Debian's
/// `x-terminal-emulator`, then the first common terminal installed, else `xterm -e`.
/// `env` reads a variable; `installed` says whether a program is on `PATH`.
pub fn default_terminal_command(
    env: &dyn Fn(&str) -> Option<String>,
    installed: &dyn Fn(&str) -> bool,
) -> String {
    if let Some(t) = env("PORTHOLE_TERMINAL").filter(|t| !t.trim().is_empty()) {
        return t;
    }
    let desktop = env("XDG_CURRENT_DESKTOP")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let per_desktop: &[(&str, &str, &str)] = &[
        ("KDE", "konsole", "konsole -e"),
        ("GNOME", "gnome-terminal", "gnome-terminal --"),
        ("UNITY", "gnome-terminal", "gnome-terminal --"),
        ("XFCE", "xfce4-terminal", "xfce4-terminal -x"),
        ("MATE", "mate-terminal", "mate-terminal -x"),
        ("LXQT", "qterminal", "qterminal -e"),
    ];
    for (name, program, template) in per_desktop {
        if desktop.split(':').any(|d| d.contains(name)) && installed(program) {
            return (*template).to_owned();
        }
    }
    let fallbacks: &[(&str, &str)] = &[
        ("x-terminal-emulator", "x-terminal-emulator -e"),
        ("gnome-terminal", "gnome-terminal --"),
        ("konsole", "konsole -e"),
        ("xfce4-terminal", "xfce4-terminal -x"),
        ("kitty", "kitty"),
        ("alacritty", "alacritty -e"),
        ("xterm", "xterm -e"),
    ];
    fallbacks
        .iter()
        .find(|(program, _)| installed(program))
        .map_or_else(
            || "xterm -e".to_owned(),
            |(_, template)| (*template).to_owned(),
        )
}

/// Whether `program` is an executable file on `PATH` (or a path to one).
pub fn program_on_path(program: &str) -> bool {
    let is_exec = |p: &std::path::Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    };
    if program.contains('/') {
        return is_exec(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| is_exec(&dir.join(program))))
        .unwrap_or(false)
}

/// The detected terminal template for this desktop.
pub fn default_terminal() -> String {
    default_terminal_command(&|k| std::env::var(k).ok(), &program_on_path)
}

/// The terminal template in effect: the configured one (the `terminal_command` setting),
/// else the desktop's default.
pub fn terminal_template(configured: Option<&str>) -> String {
    configured
        .filter(|t| !t.trim().is_empty())
        .map_or_else(default_terminal, str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("gnome-terminal --").unwrap(),
            s(&["gnome-terminal", "--"])
        );
        assert_eq!(
            split_words(r#"  a 'b c' "d \"e\"" f\ g '' "#).unwrap(),
            s(&["a", "b c", "d \"e\"", "f g", ""])
        );
        assert_eq!(
            split_words("x 'y").unwrap_err(),
            TemplateError::UnclosedQuote('\'')
        );
        assert_eq!(
            split_words("x \"y").unwrap_err(),
            TemplateError::UnclosedQuote('"')
        );
        assert_eq!(
            split_words("x \\").unwrap_err(),
            TemplateError::TrailingBackslash
        );
    }

    #[test]
    fn templates_place_the_command() {
        let ssh = s(&["ssh", "-p", "9022", "work@127.0.0.1"]);
        let (p, a) = terminal_argv("xterm -e", &ssh).unwrap();
        assert_eq!(
            (p.as_str(), a),
            ("xterm", s(&["-e", "ssh", "-p", "9022", "work@127.0.0.1"]))
        );
        let (p, a) = terminal_argv("wezterm start -- {args} ", &ssh).unwrap();
        assert_eq!(p, "wezterm");
        assert_eq!(
            a,
            s(&["start", "--", "ssh", "-p", "9022", "work@127.0.0.1"])
        );
        let key = s(&["ssh", "-i", "/tmp/a b/key"]);
        let (p, a) = terminal_argv("foot sh -c {cmd}", &key).unwrap();
        assert_eq!(p, "foot");
        assert_eq!(a, s(&["sh", "-c", "ssh -i '/tmp/a b/key'"]));
        assert_eq!(terminal_argv("  ", &[]).unwrap_err(), TemplateError::Empty);
    }

    #[test]
    fn default_follows_the_desktop() {
        let env = |desktop: &'static str| {
            move |k: &str| (k == "XDG_CURRENT_DESKTOP").then(|| desktop.to_owned())
        };
        let all = |_: &str| true;
        assert_eq!(
            default_terminal_command(&env("ubuntu:GNOME"), &all),
            "gnome-terminal --"
        );
        assert_eq!(default_terminal_command(&env("KDE"), &all), "konsole -e");
        assert_eq!(
            default_terminal_command(&env(""), &all),
            "x-terminal-emulator -e"
        );
        let only_xterm = |p: &str| p == "xterm";
        assert_eq!(
            default_terminal_command(&env("KDE"), &only_xterm),
            "xterm -e"
        );
        let none = |_: &str| false;
        assert_eq!(default_terminal_command(&env("GNOME"), &none), "xterm -e");
        let forced = |k: &str| (k == "PORTHOLE_TERMINAL").then(|| "/opt/term --run".to_owned());
        assert_eq!(default_terminal_command(&forced, &all), "/opt/term --run");
    }
}
