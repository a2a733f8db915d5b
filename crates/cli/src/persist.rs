//! Saving a network to a file atomically: a temporary file beside it, then a rename, so a
//! crash leaves the old file or the new one, never half of one.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use bassline_core::{NetworkClient, Reply, Request, StateDocument};
use bassline_net::NetClient;

/// Writes `text` to `path` atomically.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let tmp = temp_path(path);
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// A temporary name beside `path`, unique per call: the periodic saver and the final save on
/// exit may overlap, and must not write one file at once.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// The client's network as a state document.
pub async fn export(client: &NetClient) -> Result<StateDocument> {
    let response = client
        .request(Request::ExportState)
        .await
        .context("exporting the network")?;
    match response.reply {
        Reply::State { document } => Ok(document),
        other => anyhow::bail!("export answered {other:?}"),
    }
}

/// Saves the client's network to `path`.
pub async fn save(client: &NetClient, path: &Path) -> Result<()> {
    let doc = export(client).await?;
    write_atomic(path, &(doc.to_json_pretty() + "\n"))
}

/// Saves the network to `path` every `every` while it changes, until the client stops.
pub fn spawn_saver(client: NetClient, path: PathBuf, every: Duration) {
    let mut changes = client.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut dirty = false;
        loop {
            tokio::select! {
                batch = futures_util::StreamExt::next(&mut changes) => match batch {
                    Some(_) => dirty = true,
                    None => return,
                },
                _ = tick.tick() => {
                    if dirty {
                        dirty = false;
                        if let Err(e) = save(&client, &path).await {
                            eprintln!("bassline: could not save {}: {e:#}", path.display());
                        }
                    }
                }
            }
        }
    });
}

/// Saves what the host needs to host the session again ([`bassline_sync::HostSnapshot`]).
pub async fn save_snapshot(client: &NetClient, path: &Path) -> Result<()> {
    let snapshot = client
        .snapshot()
        .await
        .context("reading the session to save it")?
        .context("the session is not hosted here, so there is nothing of it to save")?;
    let text = serde_json::to_string(&snapshot).expect("snapshots serialize");
    write_atomic(path, &text)
}

/// Saves the host's snapshot to `path` at most every `every`, whenever its position moved
/// (every decided edit moves it, also one that changed nothing), until the client stops.
pub fn spawn_snapshot_saver(client: NetClient, path: PathBuf, every: Duration) {
    let mut status = client.status();
    tokio::spawn(async move {
        let mut saved = status.borrow_and_update().position;
        loop {
            if status.changed().await.is_err() {
                return;
            }
            let now = status.borrow_and_update().position;
            if now == saved {
                continue;
            }
            tokio::time::sleep(every).await;
            saved = status.borrow_and_update().position;
            if let Err(e) = save_snapshot(&client, &path).await {
                eprintln!("bassline: could not save {}: {e:#}", path.display());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("bassline-persist-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let file = dir.join("sub/state.json");
        write_atomic(&file, "one").unwrap();
        write_atomic(&file, "two").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
