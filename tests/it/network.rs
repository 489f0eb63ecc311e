//! Networks as companies have them: a registry served over TLS with a certificate from a test CA
//! that the system does not trust (as behind a TLS-inspecting proxy), reached directly or through
//! a CONNECT proxy that logs what passes through it. Everything listens on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

/// A test CA and a certificate it issued for `localhost` and 127.0.0.1.
struct TestCa {
    ca_pem: String,
    leaf: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

use tokio_rustls::rustls::pki_types as rustls_pki_types;

fn test_ca() -> TestCa {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "webcpm test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
    TestCa {
        ca_pem: ca.pem(),
        leaf: vec![leaf.der().clone()],
        key: rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// The protocols a TLS terminator offers, and where it writes the one each connection chose.
type Alpn = (&'static [&'static [u8]], Arc<Mutex<Vec<String>>>);

/// Accepts TLS on `listener` and forwards the plain bytes to `upstream`. With `alpn`, it offers
/// those protocols (as a TLS terminator in front of a server that speaks them does) and records
/// the one each connection chose (`-` for none).
async fn terminate_tls(
    listener: TcpListener,
    ca: &TestCa,
    upstream: SocketAddr,
    alpn: Option<Alpn>,
) {
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(ca.leaf.clone(), ca.key.clone_key())
        .unwrap();
    let chosen = alpn.map(|(protocols, chosen)| {
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        chosen
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, chosen) = (acceptor.clone(), chosen.clone());
        tokio::spawn(async move {
            // A client that refuses the certificate ends the handshake: nothing to forward.
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            if let Some(chosen) = chosen {
                let protocol = tls.get_ref().1.alpn_protocol().unwrap_or(b"-");
                let protocol = String::from_utf8_lossy(protocol).to_string();
                chosen.lock().unwrap().push(protocol);
            }
            let Ok(mut plain) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// A CONNECT proxy that logs the first line of every request it gets.
async fn connect_proxy(listener: TcpListener, log: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let log = log.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if client.read_exact(&mut byte).await.is_err() {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let line = head.lines().next().unwrap_or_default().to_string();
            log.lock().unwrap().push(line.clone());
            let target = match line.split(' ').collect::<Vec<_>>()[..] {
                ["CONNECT", target, _] => target.to_string(),
                _ => {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
            };
            let Ok(mut server) = TcpStream::connect(target).await else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await
                .is_ok()
            {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

/// Where the test's servers (TLS terminators, proxies) run.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// webcpm with no proxy variables from the outer environment.
fn cli(home: &Path) -> Command {
    let mut cmd = webcpm(home);
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("WEBCPM_COMPILE_CACHE", "false")
        .env("WEBCPM_HTTP_RETRIES", "0");
    cmd
}

#[test]
fn a_registry_behind_a_company_ca_and_a_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (root, _) = hello_registry(home);

    let runtime = runtime();
    let ca = Arc::new(test_ca());
    let tls = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let tls_port = tls.local_addr().unwrap().port();
    let upstream_port = free_port();
    let registry = Registry::start_behind(
        home,
        &root,
        upstream_port,
        &format!("https://localhost:{tls_port}"),
        &[],
    );
    let terminator_ca = ca.clone();
    runtime.spawn(async move {
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        terminate_tls(tls, &terminator_ca, upstream, None).await
    });
    let proxy = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let proxied: Arc<Mutex<Vec<String>>> = Arc::default();
    runtime.spawn(connect_proxy(proxy, proxied.clone()));
    let ca_file: PathBuf = home.join("company-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    assert!(
        registry.url.starts_with("https://localhost:"),
        "{}",
        registry.url
    );

    // The system does not trust the test CA: refused, with a hint that names the fix.
    let out = run(cli(home).args(["resolve", "test/hello", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("registry.ca_file"), "{err}");

    let install = |cmd: &mut Command| {
        run(cmd
            .env("HTTPS_PROXY", &proxy_url)
            .args(["install", "test/hello", "--json", "--registry"])
            .arg(&registry.url))
    };

    // With the CA added, through the proxy: GraphQL and the download both go through CONNECT.
    let out = install(cli(home).env("WEBCPM_CA_FILE", &ca_file));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["installed"][0]["webc"], "v3");
    let lines = proxied.lock().unwrap().clone();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line, &format!("CONNECT localhost:{tls_port} HTTP/1.1"));
    }
    let served = registry.log();
    assert!(
        served.iter().any(|l| l.starts_with("POST /graphql")),
        "{served:?}"
    );
    assert!(
        served.iter().any(|l| l.starts_with("GET /blobs/")),
        "{served:?}"
    );

    // From the config file, with NO_PROXY naming the host: straight there, the proxy sees nothing.
    let config = home.join("config.toml");
    std::fs::write(
        &config,
        format!("[registry]\nca_file = {:?}\n", ca_file.to_str().unwrap()),
    )
    .unwrap();
    let other = home.join("other");
    let out = install(
        cli(&other)
            .env("WEBCPM_CONFIG", &config)
            .env("NO_PROXY", "localhost"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(proxied.lock().unwrap().len(), lines.len());

    // A CA file that is not there is a usage error that names it.
    let out = run(cli(home)
        .env("WEBCPM_CA_FILE", home.join("missing.pem"))
        .args(["resolve", "test/hello", "--registry", &registry.url]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the CA file"),
        "{}",
        stderr(&out)
    );
}

/// A registry behind a TLS terminator that offers HTTP/2 (ALPN `h2`, as nginx with `http2 on`
/// does) and passes the bytes on: the client and the registry speak HTTP/2, and the install of a
/// package with three dependencies (two queries, four downloads, some at once) takes one
/// connection. Offered only HTTP/1.1, the same install needs more.
#[test]
fn http2_where_the_server_offers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let deps = [("test/a", "^1"), ("test/b", "^1"), ("test/c", "^1")];
    for (name, _) in deps {
        publish_new(home, &root, name, "1.0.0", &[]);
    }
    publish_with_deps(home, &root, "test/app", &deps);
    let runtime = runtime();
    let ca = Arc::new(test_ca());
    let ca_file: PathBuf = home.join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    // Installs `test/app` through a terminator offering `offered`; the protocol of each connection.
    let install = |store: &Path, offered: &'static [&'static [u8]]| {
        let tls = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("https://localhost:{}", tls.local_addr().unwrap().port());
        let upstream_port = free_port();
        let mut registry = Registry::start_behind(store, &root, upstream_port, &url, &[]);
        let chosen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (terminator_ca, log) = (ca.clone(), chosen.clone());
        let terminator = runtime.spawn(async move {
            let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
            terminate_tls(tls, &terminator_ca, upstream, Some((offered, log))).await
        });
        let out = run(cli(store).env("WEBCPM_CA_FILE", &ca_file).args([
            "install",
            "test/app",
            "--json",
            "--registry",
            &registry.url,
        ]));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let served = registry.log();
        let count = |prefix: &str| served.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(
            (count("POST /graphql"), count("GET /blobs/")),
            (2, 4),
            "{served:#?}"
        );
        terminator.abort();
        registry.stop();
        chosen.lock().unwrap().clone()
    };
    assert_eq!(install(&home.join("h2"), &[b"h2", b"http/1.1"]), ["h2"]);
    let h1 = install(&home.join("h1"), &[b"http/1.1"]);
    assert!(h1.len() > 1, "{h1:?}");
    assert!(h1.iter().all(|p| p == "http/1.1"), "{h1:?}");
}
