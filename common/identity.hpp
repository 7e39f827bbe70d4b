#pragma once

// The cluster's PKI and who is who, with OpenSSL's libcrypto (no CAF).
//
// `framehive certs init DIR` makes a cluster CA; `framehive certs issue DIR
// NAME --role R` signs a certificate for NAME whose subject is CN=NAME,
// OU=R (R: coordinator, node or client). TLS (CAF's openssl module) checks
// that every peer holds a certificate of the cluster CA; which *role* a peer
// has is checked by the coordinator when a node registers: the node sends
// its certificate and a signature, made with its key, over a challenge the
// coordinator gave it. A client certificate (OU=client) or a node
// certificate for another name does not pass.

#include <cstddef>
#include <string>

#include "common/result.hpp"

namespace framehive {

enum class cert_role { coordinator, node, client };

std::string to_string(cert_role r);
/// False if `text` is not a role name.
bool from_string(const std::string& text, cert_role& out);

/// The three files a TLS peer needs. All empty: TLS off.
struct tls_files {
  std::string ca;    ///< the cluster CA certificate (PEM)
  std::string cert;  ///< this process's certificate (PEM)
  std::string key;   ///< its private key (PEM, mode 0600)

  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
  /// An error naming what is missing or unreadable, or unit if all three are usable.
  result<unit, std::string> check() const;
};

/// Creates DIR (if needed) and DIR/ca.crt, DIR/ca.key (0600). Refuses to
/// overwrite an existing CA.
result<unit, std::string> create_ca(const std::string& dir);

/// Writes DIR/NAME.crt and DIR/NAME.key (0600), signed by DIR's CA, subject
/// CN=NAME, OU=role; subjectAltName DNS:NAME, IP:127.0.0.1, DNS:localhost.
result<unit, std::string> issue_certificate(const std::string& dir, const std::string& name, cert_role role);

/// `bytes` random bytes from the system's CSPRNG, hex-encoded.
std::string random_token(std::size_t bytes = 32);

/// The PEM text of a certificate file.
result<std::string, std::string> read_certificate(const std::string& cert_file);

/// Signs `challenge` with the private key in `key_file`; the signature as hex.
result<std::string, std::string> sign_challenge(const std::string& key_file, const std::string& challenge);

/// Checks that `cert_pem` was issued by the CA in `ca_file`, is valid now,
/// has OU=`role` and CN=`name`, and that `signature` (hex) is its key's
/// signature over `challenge`. The error says which check failed.
result<unit, std::string> verify_proof(const std::string& ca_file, const std::string& cert_pem, cert_role role,
                                       const std::string& name, const std::string& challenge,
                                       const std::string& signature);

}  // namespace framehive
