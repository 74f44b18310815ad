//! examples/ha-webapp on six real test hosts: converge, serve through both load balancers,
//! replicate, fail over to the standby, and bring the old primary back as the new standby.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::hosts::{TestHosts, ha_hosts};
use common::{Run, Scratch};
use serde_json::Value;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ha-webapp");
const SECRETS: [&str; 2] = ["Wq8-app-7c1e4f", "Rk2-repl-52ad90"];

struct Example {
    hosts: &'static TestHosts,
    scratch: Scratch,
}

impl Example {
    fn run(&self, playbook: &str, extra: &[&str]) -> Run {
        let inventory = self.hosts.state().join("inventory").display().to_string();
        let mut args = vec![
            format!("{EXAMPLE}/{playbook}"),
            "-i".into(),
            format!("{EXAMPLE}/inventory.yml"),
            "-i".into(),
            inventory,
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.scratch.settle(&args);
        for secret in SECRETS {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a password reached the output:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
        run
    }

    fn address(&self, host: &str) -> &str {
        let (_, _, address) = self.hosts.hosts.iter().find(|(n, ..)| n == host).unwrap();
        address
    }

    fn psql(&self, host: &str, sql: &str) -> String {
        self.hosts
            .ssh(
                host,
                &format!("cd /tmp && sudo -u postgres psql -X -tA -d webapp -c \"{sql}\""),
            )
            .trim()
            .to_string()
    }

    /// An HTTP request to a load balancer, retried for a few seconds while it (or what is behind
    /// it) settles.
    fn http(&self, lb: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
        let address = format!("{}:80", self.address(lb));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = http(&address, method, path, body);
            match answer {
                Ok((status, json)) if status < 500 => return (status, json),
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
                other => panic!("{method} http://{address}{path}: {other:?}"),
            }
        }
    }

    /// A re-run changes nothing on the hosts in its recap (failover.yml's lists only those its
    /// tasks ran for).
    fn assert_no_change(&self, run: &Run) {
        let ran: Vec<&str> = self
            .hosts
            .names()
            .into_iter()
            .filter(|host| run.stdout.contains(&format!("\n{host} ")))
            .collect();
        run.assert_code(0).assert_unchanged(&ran);
    }
}

fn http(address: &str, method: &str, path: &str, body: &str) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {answer:?}"))?;
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, json))
}

/// Polls a condition for a few seconds (replication and promotion take a moment).
fn eventually(what: &str, mut probe: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match probe() {
            None => return,
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
            Some(last) => panic!("{what}: {last}"),
        }
    }
}

#[test]
fn ha_webapp_converges_serves_replicates_and_fails_over() {
    let ex = Example {
        hosts: ha_hosts(),
        scratch: Scratch::new(),
    };
    let (db1, db2) = (ex.address("db1").to_string(), ex.address("db2").to_string());

    // Converge from nothing, then nothing left to change.
    let first = ex.run("site.yml", &[]);
    first.assert_code(0);
    for host in ex.hosts.names() {
        assert!(
            first.recap(host)["changed"] > 0,
            "{host}:\n{}",
            first.stdout
        );
    }
    ex.assert_no_change(&ex.run("site.yml", &[]));

    // Each load balancer hands a request to an instance of its own region, which reads from the
    // primary.
    for (lb, region) in [("lb1", "region1"), ("lb2", "region2")] {
        let (status, page) = ex.http(lb, "GET", "/", "");
        assert_eq!(status, 200, "{lb}: {page}");
        assert_eq!(page["region"], region, "{lb}: {page}");
        assert_eq!(page["database"], db1.as_str(), "{lb}: {page}");
        assert_eq!(page["standby"], false, "{lb}: {page}");
    }
    // Round robin over the three instances.
    let instances: std::collections::BTreeSet<String> = (0..6)
        .map(|_| ex.http("lb1", "GET", "/", "").1["instance"].to_string())
        .collect();
    assert_eq!(instances.len(), 3, "{instances:?}");

    // A row written on the primary reaches the standby.
    let (status, written) = ex.http("lb1", "POST", "/notes", "written in region 1");
    assert_eq!(status, 201, "{written}");
    let id = written["id"].as_i64().unwrap();
    assert_eq!(ex.psql("db2", "SELECT pg_is_in_recovery()"), "t");
    eventually("the standby replicates the row", || {
        let body = ex.psql("db2", &format!("SELECT body FROM notes WHERE id = {id}"));
        (body != "written in region 1").then_some(body)
    });

    // While the primary still answers, failover refuses and changes nothing.
    let refused = ex.run("failover.yml", &[]);
    refused.assert_code(2);
    assert!(
        refused.stdout.contains("db1 still accepts connections"),
        "{}",
        refused.stdout
    );
    assert_eq!(ex.psql("db2", "SELECT pg_is_in_recovery()"), "t");

    // The primary is lost: fail over, and writes succeed on the promoted standby, through either
    // load balancer.
    ex.hosts.ssh("db1", "systemctl stop postgresql@15-main");
    let failover = ex.run("failover.yml", &["--diff"]);
    failover.assert_code(0);
    assert!(
        failover
            .stdout
            .contains(&format!("-DB_HOST={db1}\n+DB_HOST={db2}")),
        "{}",
        failover.stdout
    );
    assert!(
        failover.stdout.contains("changed: [db1 -> db2(")
            && failover
                .stdout
                .contains("RUNNING HANDLER [haproxy : reload haproxy]"),
        "{}",
        failover.stdout
    );
    assert_eq!(ex.psql("db2", "SELECT pg_is_in_recovery()"), "f");
    for lb in ["lb1", "lb2"] {
        let (status, written) = ex.http(lb, "POST", "/notes", &format!("after failover via {lb}"));
        assert_eq!(status, 201, "{lb}: {written}");
        assert_eq!(written["database"], db2.as_str(), "{lb}: {written}");
    }
    assert_eq!(
        ex.psql(
            "db2",
            "SELECT count(*) FROM notes WHERE body LIKE 'after failover%'"
        ),
        "2"
    );
    ex.assert_no_change(&ex.run("failover.yml", &[]));

    // With db2 the primary in the inventory, site.yml makes the old primary its standby.
    let rejoin = ex.run("site.yml", &["-e", "db_primary=db2"]);
    rejoin.assert_code(0);
    assert!(rejoin.recap("db1")["changed"] > 0, "{}", rejoin.stdout);
    assert_eq!(rejoin.recap("db2")["changed"], 0, "{}", rejoin.stdout);
    assert_eq!(ex.psql("db1", "SELECT pg_is_in_recovery()"), "t");
    let (status, written) = ex.http("lb2", "POST", "/notes", "after the rejoin");
    assert_eq!(status, 201, "{written}");
    let id = written["id"].as_i64().unwrap();
    eventually("the old primary replicates as a standby", || {
        let body = ex.psql("db1", &format!("SELECT body FROM notes WHERE id = {id}"));
        (body != "after the rejoin").then_some(body)
    });
    ex.assert_no_change(&ex.run("site.yml", &["-e", "db_primary=db2"]));
}
