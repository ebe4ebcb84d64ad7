//! Test certificates made with the openssl command: a CA of its own per call, a server
//! certificate and a client certificate signed by it.

use std::process::{Command, Stdio};

use super::skip::skip;
use super::temp_file;

/// Runs openssl with `args`; false when it is missing or fails.
fn openssl(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Certificates made with the openssl command, all signed by one test CA.
pub struct Certificates {
    pub ca: String,
    /// For the server names asked for.
    pub server: String,
    pub server_key: String,
    /// For client authentication.
    pub client: String,
    pub client_key: String,
}

/// A certificate authority of its own, under the folder `name` of this test process's temporary
/// folder, with a server certificate for `server_names` (`subjectAltName` entries, e.g.
/// `DNS:localhost,IP:127.0.0.1`) and a client certificate.
pub fn certificates(name: &str, server_names: &str) -> Option<Certificates> {
    let marker = temp_file("certs-marker", "");
    let dir = marker.parent().unwrap().join(format!("{name}-certs"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        path("ca.key"),
        path("ca.crt"),
        path("server.key"),
        path("server.csr"),
        path("server.crt"),
        path("server.ext"),
    );
    std::fs::write(
        &ext,
        format!("subjectAltName={server_names}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    let (client_key, client_csr, client, client_ext) = (
        path("client.key"),
        path("client.csr"),
        path("client.crt"),
        path("client.ext"),
    );
    std::fs::write(
        &client_ext,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    // A key and a signing request for `subject`; then the request signed by the CA.
    let request = |subject: &str, key: &str, csr: &str| {
        openssl(
            &[
                &["req", "-subj", subject],
                &ec[..],
                &["-keyout", key, "-out", csr],
            ]
            .concat(),
        )
    };
    let sign = |csr: &str, ext: &str, cert: &str| {
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            ext,
            "-out",
            cert,
        ])
    };
    let made = openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=vigil test CA"],
            &ec[..],
            &["-keyout", &ca_key, "-out", &ca],
        ]
        .concat(),
    ) && request("/CN=localhost", &key, &csr)
        && sign(&csr, &ext, &cert)
        && request("/CN=vigil probe", &client_key, &client_csr)
        && sign(&client_csr, &client_ext, &client);
    if !made {
        skip("openssl (it is missing or could not make the test certificates)");
        return None;
    }
    Some(Certificates {
        ca,
        server: cert,
        server_key: key,
        client,
        client_key,
    })
}
