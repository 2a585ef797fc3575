//! Throwaway PostgreSQL clusters for tests and benchmarks: `initdb` in a temporary directory, a
//! server on a free loopback port, one fresh database per test.
//!
//! What it is: test support, used by `[dev-dependencies]` only. It runs the server binaries of
//! the machine's PostgreSQL package (installed by `.ci/run` when missing) as the `postgres` user
//! when the tests run as root, since the server refuses to run as root. A watchdog stops the
//! server and deletes its directory once the process that started it has exited, even after a
//! kill -9, so a test run leaves nothing behind.
//!
//! What it is not: a way to run PostgreSQL in production (see docs/operations.md, clusters on PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
    databases: AtomicUsize,
}

/// What went wrong starting or using a cluster.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn fail(what: &str, e: impl std::fmt::Display) -> Error {
    Error(format!("{what}: {e}"))
}

/// The directory of the server binaries: `$ZHENGYIN_PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin`, else `initdb`'s directory on the `PATH`.
fn binaries() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("ZHENGYIN_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists())
        .ok_or_else(|| {
            Error(
                "PostgreSQL's server binaries were not found: run `bash scripts/test-deps.sh` \
                 (scripts/test.sh does it), or set ZHENGYIN_PG_BIN"
                    .to_owned(),
            )
        })
}

fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| fail("free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| fail("free port", e))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// The cluster shared by every test of this process, started on first use.
    pub fn shared() -> Result<&'static Cluster, Error> {
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Cluster::start().map_err(|e| e.0))
            .as_ref()
            .map_err(|e| Error(e.clone()))
    }

    /// Creates and starts a new cluster.
    pub fn start() -> Result<Cluster, Error> {
        let cluster = Self::create()?;
        cluster.initdb()?;
        cluster.watch()?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// A streaming-replication standby of `primary` (a base backup), started, that reports as
    /// `name` (for the primary's `synchronous_standby_names`).
    pub fn standby_of(primary: &Cluster, name: &str) -> Result<Cluster, Error> {
        let standby = Self::create()?;
        let port = primary.port.to_string();
        let data = standby.data();
        let data = data.to_string_lossy();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                // A checkpoint now, not spread over minutes.
                "-c",
                "fast",
            ],
        )?;
        standby.configure("cluster_name", name)?;
        standby.watch()?;
        standby.start_server()?;
        Ok(standby)
    }

    /// Promotes a standby to primary (`pg_ctl promote`) and waits until it takes writes.
    pub fn promote(&self) -> Result<(), Error> {
        self.run("pg_ctl", &["-D", &self.data().to_string_lossy(), "-w", "promote"])
    }

    fn create() -> Result<Cluster, Error> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("zhengyin-pg-")
            .tempdir()
            .map_err(|e| fail("temporary directory", e))?
            .keep();
        let cluster = Cluster {
            port: free_port()?,
            as_postgres: is_root(),
            dir,
            bin,
            databases: AtomicUsize::new(0),
        };
        if cluster.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .map_err(|e| fail("chown", e))?;
            if !status.success() {
                return Err(Error(
                    "cannot give the cluster directory to the postgres user".to_owned(),
                ));
            }
        }
        Ok(cluster)
    }

    fn initdb(&self) -> Result<(), Error> {
        let data = self.data();
        let data = data.to_string_lossy();
        self.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
        )
    }

    /// Appends a setting (`name`, a value without quotes) to the server's configuration, read at
    /// its next start.
    fn configure(&self, name: &str, value: &str) -> Result<(), Error> {
        let conf = self.data().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        std::fs::write(&conf, text).map_err(|e| fail("postgresql.auto.conf", e))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new empty database; answers its URL.
    pub fn database(&self) -> Result<String, Error> {
        let name = format!(
            "zhengyin_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Runs SQL with psql on database `db`; answers what it printed (unaligned, tuples only).
    pub fn sql(&self, db: &str, sql: &str) -> Result<String, Error> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail("psql", e))?;
        if !out.status.success() {
            return Err(Error(format!("psql: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Backs database `db` up with `pg_dump` (custom format) into `out`, as the operations guide
    /// describes: one consistent snapshot, taken while the database serves.
    pub fn dump(&self, db: &str, out: &Path) -> Result<(), Error> {
        self.client_tool("pg_dump", &["--format=custom", "--file", &out.to_string_lossy(), db])
    }

    /// Replaces database `db` by the dump `from` (every connection to it is closed first), as
    /// the operations guide describes.
    pub fn restore_dump(&self, db: &str, from: &Path) -> Result<(), Error> {
        self.sql("postgres", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
        self.sql("postgres", &format!("CREATE DATABASE {db}"))?;
        self.client_tool(
            "pg_restore",
            &["--exit-on-error", "--dbname", db, &from.to_string_lossy()],
        )
    }

    /// Runs a client tool (`pg_dump`, `pg_restore`) as this process's user against the server.
    fn client_tool(&self, program: &str, args: &[&str]) -> Result<(), Error> {
        let out = Command::new(self.bin.join(program))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(program, e))?;
        if !out.status.success() {
            return Err(Error(format!(
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Starts the server (again, after [`Cluster::stop_immediately`]).
    pub fn start_server(&self) -> Result<(), Error> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-o",
                &options,
                "-l",
                &self.dir.join("server.log").to_string_lossy(),
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`): no shutdown checkpoint;
    /// the next start recovers from the WAL.
    pub fn stop_immediately(&self) -> Result<(), Error> {
        self.run(
            "pg_ctl",
            &["-D", &self.data().to_string_lossy(), "-m", "immediate", "-w", "stop"],
        )
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null()).current_dir(&self.dir);
        cmd
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), Error> {
        let out = self
            .command(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| fail(program, e))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            return Err(Error(format!(
                "{program} failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            )));
        }
        Ok(())
    }

    /// Starts the watchdog: once this process is gone, stop the server and remove the directory.
    fn watch(&self) -> Result<(), Error> {
        let stop = self.command("pg_ctl");
        let mut stop_line = format!("{:?}", stop.get_program());
        for arg in stop.get_args() {
            stop_line.push(' ');
            stop_line.push_str(&shell_quote(arg.to_string_lossy().as_ref()));
        }
        let data = shell_quote(&self.data().to_string_lossy());
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop_line} -D {data} -m immediate -w stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = shell_quote(&self.dir.to_string_lossy()),
        );
        // In a session of its own, so that a signal to the test's process group (a timeout, a
        // Ctrl-C) does not take the watchdog with it.
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| fail("watchdog", e))
    }
}

impl Drop for Cluster {
    /// A cluster of one test ([`Cluster::start`]) stops with it; the shared one lives as long
    /// as the process (its watchdog stops it).
    fn drop(&mut self) {
        let _ = self.stop_immediately();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
