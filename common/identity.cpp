#include "common/identity.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace framehive {

namespace fs = std::filesystem;

namespace {

// -- RAII for libcrypto objects --------------------------------------------------------

template <class T, void (*Free)(T*)>
struct ossl_deleter {
  void operator()(T* p) const { Free(p); }
};

template <class T, void (*Free)(T*)>
using ossl_ptr = std::unique_ptr<T, ossl_deleter<T, Free>>;

void free_bio(BIO* b) { BIO_free_all(b); }

using bio_ptr = ossl_ptr<BIO, free_bio>;
using x509_ptr = ossl_ptr<X509, X509_free>;
using pkey_ptr = ossl_ptr<EVP_PKEY, EVP_PKEY_free>;
using store_ptr = ossl_ptr<X509_STORE, X509_STORE_free>;
using store_ctx_ptr = ossl_ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using md_ctx_ptr = ossl_ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using bn_ptr = ossl_ptr<BIGNUM, BN_free>;

using error_text = std::string;

/// Signatures over a challenge are made over this prefix plus the challenge,
/// so a node key can never be made to sign anything else (a TLS transcript, a
/// certificate) by a coordinator that chose the challenge.
constexpr const char* proof_context = "framehive node identity proof v1\n";

constexpr int ca_days = 3650;    // about 10 years
constexpr int leaf_days = 730;   // 2 years
constexpr std::size_t max_pem_bytes = 64 * 1024;
constexpr std::size_t max_name_bytes = 64;  // X.509's upper bound for a CN

/// The oldest queued libcrypto error as text (and clears the queue).
std::string ssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown libcrypto error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

result<std::string, error_text> read_file(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return error_text{"cannot read " + path + ": " + std::strerror(errno)};
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > limit)
      return error_text{path + " is larger than " + std::to_string(limit) + " bytes: not a PEM file"};
  }
  return text;
}

bio_ptr memory_bio(const std::string& text) {
  return bio_ptr{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
}

/// The first certificate in `pem`, or null.
x509_ptr parse_certificate(const std::string& pem) {
  auto bio = memory_bio(pem);
  x509_ptr cert{bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr};
  ERR_clear_error();
  return cert;
}

result<x509_ptr, error_text> load_certificate(const std::string& path) {
  auto text = read_file(path, max_pem_bytes);
  if (!text)
    return text.error();
  auto cert = parse_certificate(*text);
  if (!cert)
    return error_text{path + " holds no PEM certificate"};
  return cert;
}

result<pkey_ptr, error_text> load_private_key(const std::string& path) {
  auto text = read_file(path, max_pem_bytes);
  if (!text)
    return text.error();
  auto bio = memory_bio(*text);
  pkey_ptr key{bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr};
  if (!key)
    return error_text{path + " holds no unencrypted PEM private key (" + ssl_error() + ")"};
  return key;
}

std::string pem_of(X509* cert) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key) {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

/// Writes a new file with `mode`; refuses to replace an existing one (O_EXCL),
/// so a key is never readable by others, not even for a moment.
result<unit, error_text> write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return error_text{"cannot create " + path + ": " + std::strerror(errno)};
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? static_cast<std::size_t>(n) : 0;
  }
  ok = (::fsync(fd) == 0) && ok;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return error_text{"cannot write " + path + ": " + std::strerror(errno)};
  }
  return unit{};
}

std::string to_hex(const unsigned char* data, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

bool from_hex(const std::string& hex, std::vector<unsigned char>& out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  if (hex.empty() || hex.size() % 2 != 0)
    return false;
  out.clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out.push_back(static_cast<unsigned char>(hi << 4 | lo));
  }
  return true;
}

// -- building certificates ---------------------------------------------------------------

pkey_ptr new_key() { return pkey_ptr{EVP_EC_gen("P-256")}; }

bool set_random_serial(X509* cert) {
  bn_ptr bn{BN_new()};
  // 127 random bits: positive, unique with overwhelming probability (RFC 5280 allows 20 octets).
  if (!bn || !BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY))
    return false;
  return BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr;
}

bool add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                    -1, -1, 0) == 1;
}

/// Adds one extension in openssl.cnf syntax, with `issuer` and `subject` as context.
bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext)
    return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

/// A certificate for `key` with subject O=framehive, OU=`ou` (if any), CN=`cn`,
/// valid from now for `days`, not yet signed and without extensions.
x509_ptr new_certificate(EVP_PKEY* key, const std::string& cn, const std::string& ou, int days) {
  x509_ptr cert{X509_new()};
  if (!cert || !X509_set_version(cert.get(), 2) || !set_random_serial(cert.get()))
    return nullptr;
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);  // an hour of clock skew between machines
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!add_name_entry(name, "O", "framehive") || (!ou.empty() && !add_name_entry(name, "OU", ou)) ||
      !add_name_entry(name, "CN", cn) || !X509_set_pubkey(cert.get(), key))
    return nullptr;
  return cert;
}

result<x509_ptr, error_text> make_ca_certificate(EVP_PKEY* key) {
  auto cert = new_certificate(key, "framehive cluster CA", "", ca_days);
  if (!cert || !X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())))
    return error_text{"cannot build the CA certificate: " + ssl_error()};
  X509* c = cert.get();
  if (!add_extension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_extension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_extension(c, c, NID_subject_key_identifier, "hash") ||
      !add_extension(c, c, NID_authority_key_identifier, "keyid:always") ||
      X509_sign(c, key, EVP_sha256()) <= 0)
    return error_text{"cannot sign the CA certificate: " + ssl_error()};
  return cert;
}

result<x509_ptr, error_text> make_leaf_certificate(EVP_PKEY* key, const std::string& name, cert_role role,
                                                   X509* ca_cert, EVP_PKEY* ca_key) {
  auto cert = new_certificate(key, name, to_string(role), leaf_days);
  if (!cert || !X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)))
    return error_text{"cannot build the certificate: " + ssl_error()};
  X509* c = cert.get();
  // Every peer is both TLS client and server to CAF (a node also accepts), so both usages.
  if (!add_extension(c, ca_cert, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(c, ca_cert, NID_key_usage, "critical,digitalSignature,keyAgreement") ||
      !add_extension(c, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_extension(c, ca_cert, NID_subject_alt_name, "DNS:" + name + ",DNS:localhost,IP:127.0.0.1") ||
      !add_extension(c, ca_cert, NID_subject_key_identifier, "hash") ||
      !add_extension(c, ca_cert, NID_authority_key_identifier, "keyid:always") ||
      X509_sign(c, ca_key, EVP_sha256()) <= 0)
    return error_text{"cannot sign the certificate for " + name + ": " + ssl_error()};
  return cert;
}

/// Writes `key` (0600) and then `cert` (0644); leaves neither behind on failure.
result<unit, error_text> write_pair(const std::string& key_path, EVP_PKEY* key, const std::string& cert_path,
                                    X509* cert) {
  if (auto r = write_new_file(key_path, pem_of(key), 0600); !r)
    return r.error();
  if (auto r = write_new_file(cert_path, pem_of(cert), 0644); !r) {
    ::unlink(key_path.c_str());
    return r.error();
  }
  return unit{};
}

/// A name is also a file name and a DNS name: letters, digits, '.', '-', '_'.
result<unit, error_text> check_name(const std::string& name) {
  if (name.empty() || name.size() > max_name_bytes)
    return error_text{"a certificate name must have 1 to " + std::to_string(max_name_bytes) + " characters"};
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
      return error_text{"certificate name '" + name + "' may only contain letters, digits, '.', '-' and '_'"};
  if (name == "ca" || name.front() == '.' || name.front() == '-')
    return error_text{"'" + name + "' cannot be a certificate name (reserved or starts with '.' or '-')"};
  return unit{};
}

// -- checking certificates ----------------------------------------------------------------

/// The only value of `nid` in `name`; empty if it is missing or appears twice.
std::string single_entry(X509_NAME* name, int nid) {
  int at = X509_NAME_get_index_by_NID(name, nid, -1);
  if (at < 0 || X509_NAME_get_index_by_NID(name, nid, at) >= 0)
    return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0)
    return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out.find('\0') == std::string::npos ? out : std::string{};
}

/// Every certificate in `ca_file` (a bundle is fine, as for CAF's openssl.cafile) as trust anchors.
result<store_ptr, error_text> load_ca_store(const std::string& ca_file) {
  if (auto text = read_file(ca_file, max_pem_bytes); !text)
    return text.error();
  store_ptr store{X509_STORE_new()};
  if (!store || X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    ERR_clear_error();
    return error_text{ca_file + " holds no PEM certificate"};
  }
  return store;
}

result<unit, error_text> verify_chain(const std::string& ca_file, X509* cert) {
  auto store = load_ca_store(ca_file);
  if (!store)
    return store.error();
  store_ctx_ptr ctx{X509_STORE_CTX_new()};
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store->get(), cert, nullptr) != 1)
    return error_text{"cannot set up certificate verification: " + ssl_error()};
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return error_text{std::string("certificate not accepted by the cluster CA: ") +
                      X509_verify_cert_error_string(err)};
  }
  return unit{};
}

result<unit, error_text> verify_signature(X509* cert, const std::string& challenge, const std::string& signature) {
  std::vector<unsigned char> sig;
  if (!from_hex(signature, sig))
    return error_text{"the proof is not a hex-encoded signature"};
  pkey_ptr key{X509_get_pubkey(cert)};
  md_ctx_ptr md{EVP_MD_CTX_new()};
  const std::string message = proof_context + challenge;
  if (!key || !md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1)
    return error_text{"cannot check the signature: " + ssl_error()};
  int ok = EVP_DigestVerify(md.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char*>(message.data()),
                            message.size());
  ERR_clear_error();
  if (ok != 1)
    return error_text{"the signature does not match the challenge and the certificate's key"};
  return unit{};
}

/// An error naming the file, or unit if `cert` is signed by `ca` and `key` is its key.
result<unit, error_text> check_tls_pair(const tls_files& f) {
  if (auto ca = load_ca_store(f.ca); !ca)
    return error_text{"TLS CA (--tls.ca): " + ca.error()};
  auto cert = load_certificate(f.cert);
  if (!cert)
    return error_text{"TLS certificate (--tls.cert): " + cert.error()};
  auto key = load_private_key(f.key);
  if (!key)
    return error_text{"TLS key (--tls.key): " + key.error()};
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return error_text{"TLS key " + f.key + " does not belong to the certificate " + f.cert};
  }
  if (auto r = verify_chain(f.ca, cert->get()); !r)
    return error_text{"TLS certificate " + f.cert + " and CA " + f.ca + ": " + r.error()};
  return unit{};
}

}  // namespace

// -- roles ----------------------------------------------------------------------------------

std::string to_string(cert_role r) {
  switch (r) {
    case cert_role::coordinator:
      return "coordinator";
    case cert_role::node:
      return "node";
    case cert_role::client:
      return "client";
  }
  return "unknown";
}

bool from_string(const std::string& text, cert_role& out) {
  for (auto r : {cert_role::coordinator, cert_role::node, cert_role::client})
    if (text == to_string(r)) {
      out = r;
      return true;
    }
  return false;
}

result<unit, std::string> tls_files::check() const {
  if (!enabled())
    return unit{};
  const std::pair<const char*, const std::string*> parts[] = {{"--tls.ca", &ca}, {"--tls.cert", &cert},
                                                              {"--tls.key", &key}};
  for (const auto& [flag, file] : parts)
    if (file->empty())
      return std::string{"TLS needs all three of --tls.ca, --tls.cert and --tls.key; "} + flag + " is missing";
  return check_tls_pair(*this);
}

// -- the PKI --------------------------------------------------------------------------------

result<unit, std::string> create_ca(const std::string& dir) {
  const std::string crt = (fs::path(dir) / "ca.crt").string();
  const std::string key_path = (fs::path(dir) / "ca.key").string();
  std::error_code ec;
  if (fs::exists(crt, ec) || fs::exists(key_path, ec))
    return std::string{"a cluster CA already exists in " + dir + " (ca.crt or ca.key): refusing to overwrite it"};
  fs::create_directories(dir, ec);
  if (ec)
    return std::string{"cannot create " + dir + ": " + ec.message()};
  auto key = new_key();
  if (!key)
    return std::string{"cannot generate a key: " + ssl_error()};
  auto cert = make_ca_certificate(key.get());
  if (!cert)
    return cert.error();
  return write_pair(key_path, key.get(), crt, cert->get());
}

result<unit, std::string> issue_certificate(const std::string& dir, const std::string& name, cert_role role) {
  if (auto r = check_name(name); !r)
    return r.error();
  const std::string ca_crt = (fs::path(dir) / "ca.crt").string();
  const std::string ca_key_path = (fs::path(dir) / "ca.key").string();
  std::error_code ec;
  if (!fs::exists(ca_crt, ec) || !fs::exists(ca_key_path, ec))
    return std::string{"no cluster CA in " + dir + " (run `framehive certs init " + dir + "` first)"};
  const std::string crt = (fs::path(dir) / (name + ".crt")).string();
  const std::string key_path = (fs::path(dir) / (name + ".key")).string();
  if (fs::exists(crt, ec) || fs::exists(key_path, ec))
    return std::string{crt + " or " + key_path + " already exists: refusing to overwrite it"};
  auto ca_cert = load_certificate(ca_crt);
  if (!ca_cert)
    return ca_cert.error();
  auto ca_key = load_private_key(ca_key_path);
  if (!ca_key)
    return ca_key.error();
  auto key = new_key();
  if (!key)
    return std::string{"cannot generate a key: " + ssl_error()};
  auto cert = make_leaf_certificate(key.get(), name, role, ca_cert->get(), ca_key->get());
  if (!cert)
    return cert.error();
  return write_pair(key_path, key.get(), crt, cert->get());
}

std::string random_token(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (bytes > 0 && RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    // libcrypto's generator failed (it should not); ask the kernel directly.
    std::size_t done = 0;
    while (done < bytes) {
      ssize_t n = getrandom(buf.data() + done, bytes - done, 0);
      if (n < 0 && errno != EINTR)
        std::abort();  // no source of randomness at all: a predictable secret is worse than none
      done += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
  }
  return to_hex(buf.data(), buf.size());
}

// -- proofs of identity -------------------------------------------------------------------

result<std::string, std::string> read_certificate(const std::string& cert_file) {
  using out = result<std::string, std::string>;
  auto cert = load_certificate(cert_file);
  if (!cert)
    return out(error_tag, cert.error());
  return out(pem_of(cert->get()));
}

result<std::string, std::string> sign_challenge(const std::string& key_file, const std::string& challenge) {
  using out = result<std::string, std::string>;
  auto key = load_private_key(key_file);
  if (!key)
    return out(error_tag, key.error());
  md_ctx_ptr md{EVP_MD_CTX_new()};
  const std::string message = proof_context + challenge;
  std::size_t n = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key->get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    return out(error_tag, "cannot sign with " + key_file + ": " + ssl_error());
  std::vector<unsigned char> sig(n);
  if (EVP_DigestSign(md.get(), sig.data(), &n, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    return out(error_tag, "cannot sign with " + key_file + ": " + ssl_error());
  return out(to_hex(sig.data(), n));
}

result<unit, std::string> verify_proof(const std::string& ca_file, const std::string& cert_pem, cert_role role,
                                       const std::string& name, const std::string& challenge,
                                       const std::string& signature) {
  if (cert_pem.size() > max_pem_bytes)
    return std::string{"the certificate is larger than " + std::to_string(max_pem_bytes) + " bytes"};
  auto cert = parse_certificate(cert_pem);
  if (!cert)
    return std::string{"no PEM certificate was presented"};
  if (auto r = verify_chain(ca_file, cert.get()); !r)
    return r.error();
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const std::string ou = single_entry(subject, NID_organizationalUnitName);
  if (ou != to_string(role))
    return std::string{"the certificate's role is '" + ou + "', not '" + to_string(role) + "'"};
  const std::string cn = single_entry(subject, NID_commonName);
  if (cn != name)
    return std::string{"the certificate is for '" + cn + "', not '" + name + "'"};
  if (challenge.empty())
    return std::string{"no challenge to prove"};
  return verify_signature(cert.get(), challenge, signature);
}

}  // namespace framehive
