//! `cairn serve`: the workspace over HTTP (`cairn_server`), with the sync node beside it when
//! asked (`--sync`).

use anyhow::{Context, Result, bail};

use crate::args::{Cli, ServeArgs};
use crate::cmd::sync;
use crate::common::{open_or_create, runtime};

/// The bearer token: from `--token-file`, else `CAIRN_TOKEN`. Never from the command line, where
/// `ps` shows it to every user of the machine.
fn serve_token(args: &ServeArgs) -> Result<Option<String>> {
    if args.token.is_some() {
        bail!(
            "--token on the command line is visible to every local user (ps); put the token in \
             a file and pass --token-file FILE, or set CAIRN_TOKEN"
        );
    }
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        return Ok(Some(token));
    }
    Ok(std::env::var("CAIRN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty()))
}

/// `cairn serve`: runs until Ctrl-C or SIGTERM.
pub fn serve(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let (dir, ws, created) = open_or_create(cli)?;
    if created {
        errln!("created workspace {}", dir.display());
    }
    let config = cairn_server::ServerConfig {
        bind: std::net::SocketAddr::new(args.host, args.port),
        token: serve_token(args)?,
        allowed_hosts: args.allow_hosts.clone(),
        ui_dir: args.ui_dir.clone(),
    };
    runtime()?.block_on(async move {
        let synced = sync::start_for_serve(&ws, &args.sync).await?;
        let server = cairn_server::Server::bind(ws.clone(), config).await?;
        let addr = server.local_addr()?;
        outln!("Cairn is serving {} at http://{addr}", dir.display());
        outln!("  export MLFLOW_TRACKING_URI=http://{addr}");
        server
            .run(async {
                // Ctrl-C or SIGTERM: finish the requests in flight, then stop.
                let ctrl_c = tokio::signal::ctrl_c();
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .ok();
                    let term = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
                }
                #[cfg(not(unix))]
                {
                    let _ = ctrl_c.await;
                }
            })
            .await?;
        if synced {
            ws.stop_hosted_sync().await;
        }
        anyhow::Ok(())
    })
}
