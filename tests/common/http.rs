//! A TLS server for the HTTP modules' tests (get_url, uri, unarchive): a test CA, a server
//! certificate for 127.0.0.1 and a client certificate, made with the openssl CLI, and
//! `openssl s_server -WWW` serving a folder that holds `hello.txt`. It may ask for a client
//! certificate from the test CA, or speak only TLS 1.2 with one cipher.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

pub const HELLO: &str = "hello over http\n";

/// How the server is to be picky.
#[derive(Default)]
pub struct TlsOptions<'a> {
    /// Refuse a client without a certificate from the test CA.
    pub require_client_cert: bool,
    /// Speak TLS 1.2 only, with this one OpenSSL cipher.
    pub only_cipher: Option<&'a str>,
}

pub struct TlsServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// The test CA's certificate (PEM).
    pub ca: String,
}

impl TlsServer {
    /// A file the server's folder holds: `client.pem` and `client.key` (a client certificate
    /// from the test CA), `other-client.pem`/`.key` (one from no CA the server knows).
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tls_server() -> TlsServer {
    tls_server_with(&TlsOptions::default())
}

pub fn tls_server_with(options: &TlsOptions) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=settle test CA' 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=127.0.0.1' 2>/dev/null",
    );
    sh(
        "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj '/CN=settle test client' 2>/dev/null \
         && printf 'extendedKeyUsage=clientAuth\\nbasicConstraints=CA:FALSE\\n' > client.cnf \
         && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.cnf 2>/dev/null \
         && openssl req -x509 -newkey rsa:2048 -nodes -keyout other-client.key -out other-client.pem -days 2 -subj '/CN=stranger' 2>/dev/null",
    );
    std::fs::write(dir.path().join("hello.txt"), HELLO).unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut command = Command::new("openssl");
    command
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")]);
    if options.require_client_cert {
        command.args(["-Verify", "1", "-verify_return_error", "-CAfile", "ca.pem"]);
    }
    if let Some(cipher) = options.only_cipher {
        command.args(["-tls1_2", "-cipher", cipher]);
    }
    let child = command
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    TlsServer {
        child,
        port,
        dir,
        ca,
    }
}
