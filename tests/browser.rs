//! A real browser against the `conditional` example: headless Chromium loads an article page,
//! the page reloads itself once, and the server's log and counters show that the reload
//! revalidated with `If-None-Match`, got `304 Not Modified`, and did not run the handler again.
//!
//! Chromium is Debian's `chromium` package (`/usr/bin/chromium`, or the path in `CHROMIUM`).
//! Without it the test is skipped with a message, unless `REQUIRE_CHROMIUM=1`, as in CI, where
//! `.ci/run` installs it.

#[path = "../examples/conditional/app.rs"]
mod app;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::process::Command;

/// The longest the browser may take; it needs about a second.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary, or the path where it was looked for.
fn chromium() -> Result<PathBuf, PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() { Ok(path) } else { Err(path) }
}

/// A new, empty profile directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Profile {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("axum-cache-browser-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads `url` in headless Chromium until the page has settled and returns the final DOM.
async fn dump_dom(chromium: &PathBuf, url: &str) -> String {
    let profile = Profile::new();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        // Virtual time: the browser runs the page, its reload included, until it is idle or
        // 10 s of page time have passed, without waiting for real timers.
        .arg("--virtual-time-budget=10000")
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("Chromium did not finish within {BROWSER_TIMEOUT:?}"))
        .expect("Chromium starts");
    assert!(
        output.status.success(),
        "Chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_revalidates_and_gets_304_without_running_the_handler() {
    let chromium = match chromium() {
        Ok(chromium) => chromium,
        Err(missing) => {
            let required = std::env::var("REQUIRE_CHROMIUM").is_ok_and(|value| value == "1");
            assert!(
                !required,
                "REQUIRE_CHROMIUM=1 but there is no Chromium at {}: apt-get install chromium",
                missing.display()
            );
            println!(
                "skipping the browser test: no Chromium at {} (apt-get install chromium, or \
                 set CHROMIUM to its path)",
                missing.display()
            );
            return;
        }
    };
    let state = app::AppState::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app::router(state.clone())).into_future());

    let dom = dump_dom(
        &chromium,
        &format!("http://{address}/articles/1?reload-once"),
    )
    .await;
    server.abort();

    let log = state.log();
    let summary: Vec<String> = log
        .iter()
        .map(|line| {
            format!(
                "{} {} if-none-match={:?} -> {}",
                line.method, line.path, line.if_none_match, line.status
            )
        })
        .collect();
    let summary = summary.join("\n");
    // The page ran twice: the reload happened and showed the revalidated copy.
    assert!(
        dom.contains("loads=2"),
        "DOM:\n{dom}\nserver log:\n{summary}"
    );
    assert!(dom.contains("<h1>Conditional requests</h1>"), "DOM:\n{dom}");

    let page: Vec<_> = log
        .iter()
        .filter(|line| line.path == "/articles/1?reload-once")
        .collect();
    assert_eq!(page.len(), 2, "server log:\n{summary}");
    assert_eq!(page[0].if_none_match, None, "server log:\n{summary}");
    assert_eq!(page[0].status, 200, "server log:\n{summary}");
    assert_eq!(
        page[1].if_none_match.as_deref(),
        Some(r#""article-1-v1""#),
        "server log:\n{summary}"
    );
    assert_eq!(page[1].status, 304, "server log:\n{summary}");
    // The 304 came from `condition()`: the page was rendered once.
    assert_eq!(state.renders(), 1, "server log:\n{summary}");

    // The script, behind ConditionalGetLayer, was revalidated with its body's hash.
    let script: Vec<_> = log
        .iter()
        .filter(|line| line.path == "/static/app.js")
        .collect();
    assert_eq!(
        script.first().map(|line| line.status),
        Some(200),
        "{summary}"
    );
    let revalidated = script
        .iter()
        .find(|line| line.if_none_match.is_some())
        .unwrap_or_else(|| panic!("the script was not revalidated:\n{summary}"));
    assert_eq!(revalidated.status, 304, "server log:\n{summary}");
    assert!(
        revalidated
            .if_none_match
            .as_deref()
            .is_some_and(|tag| tag.len() == 66),
        "a SHA-256 tag: {summary}"
    );
    // ConditionalGetLayer saves the transfer, not the work: its handler ran both times.
    assert_eq!(
        state.scripts(),
        script.len() as u64,
        "server log:\n{summary}"
    );
}
