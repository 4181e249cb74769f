//! A throwaway PostgreSQL for tests: a cluster of its own in a temp folder, on a free loopback
//! port and a socket in that folder, started with `pg_ctl` (as the `postgres` user when the
//! tests run as root, since `initdb` refuses root) and stopped by its PID when dropped.
//! Without PostgreSQL installed the test using it skips with a loud message, except in CI
//! (`CI` set), where `.ci/run` installs it and it must run.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub(crate) port: u16,
    as_postgres: bool,
    /// More server options (TLS).
    options: String,
}

/// The newest installed PostgreSQL's programs.
fn bindir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pg {
    pub(crate) fn start() -> Option<Pg> {
        Pg::start_with(None)
    }

    /// A server that offers TLS with this certificate and key (PEM).
    pub(crate) fn start_with_tls(cert: &str, key: &str) -> Option<Pg> {
        Pg::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Pg> {
        let Some(bin) = bindir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have PostgreSQL (Debian's postgresql package; .ci/run installs it)"
            );
            eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = rustix_is_root();
        if as_postgres {
            // initdb refuses root: the cluster belongs to the postgres user.
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster's folder to postgres");
        }
        let port = free_port();
        let mut pg = Pg {
            dir,
            bin,
            port,
            as_postgres,
            options: String::new(),
        };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
            ],
        );
        if let Some((cert, key)) = tls {
            // The key must be the server's own, readable by it alone.
            let (c, k) = (
                pg.dir.path().join("server.crt"),
                pg.dir.path().join("server.key"),
            );
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            std::fs::set_permissions(&k, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            if pg.as_postgres {
                for f in [&c, &k] {
                    let ok = Command::new("chown")
                        .args(["postgres:postgres"])
                        .arg(f)
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "chown the server's certificate to postgres");
                }
            }
            pg.options = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            );
        }
        pg.start_again();
        Some(pg)
    }

    /// Starts the server (again, after [`Pg::stop`]), on the same port and data.
    pub(crate) fn start_again(&self) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{}",
            self.port,
            self.dir.path().display(),
            self.options
        );
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                self.dir.path().join("log").as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
    }

    /// Stops the server by its PID (a fast shutdown; SIGKILL if it lingers).
    pub(crate) fn stop(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let path = self.bin.join(program);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A connection string for the `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
