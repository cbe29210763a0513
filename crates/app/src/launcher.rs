//! What opens URLs and runs programs: the Tauri crate's launcher (the desktop's browser,
//! the shell plugin), or in tests one that records. `$BROWSER` is read here, once.

/// Launches what a click opens.
pub trait Launcher: Send + Sync {
    /// Opens `url` in the user's browser.
    fn open_url(&self, url: &str) -> Result<(), String>;
    /// Runs `program args...` (a terminal running a command) without waiting for it.
    fn spawn(&self, program: &str, args: &[String]) -> Result<(), String>;
}

/// The program and arguments `$BROWSER` asks for to open `url`: the first entry of the
/// colon-separated list, split into words, with `%s` replaced by the URL or the URL
/// appended. `None` when `$BROWSER` is unset or empty.
pub fn browser_command(browser: Option<&str>, url: &str) -> Option<(String, Vec<String>)> {
    let entry = browser?.split(':').map(str::trim).find(|e| !e.is_empty())?;
    let mut words = crate::terminal::split_words(entry).ok()?;
    if words.is_empty() {
        return None;
    }
    let mut placed = false;
    for word in words.iter_mut() {
        if word.contains("%s") {
            *word = word.replace("%s", url);
            placed = true;
        }
    }
    if !placed {
        words.push(url.to_owned());
    }
    let program = words.remove(0);
    Some((program, words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_variable_is_honoured() {
        let url = "http://127.0.0.1:8890/";
        assert_eq!(browser_command(None, url), None);
        assert_eq!(browser_command(Some(" "), url), None);
        assert_eq!(
            browser_command(Some("/tmp/record-url"), url),
            Some(("/tmp/record-url".to_owned(), vec![url.to_owned()]))
        );
        assert_eq!(
            browser_command(Some("firefox --new-tab %s:chromium"), url),
            Some((
                "firefox".to_owned(),
                vec!["--new-tab".to_owned(), url.to_owned()]
            ))
        );
    }
}
