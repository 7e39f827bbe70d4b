#include "common/identity.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

using namespace framehive;
namespace fs = std::filesystem;

namespace {

/// Two cluster CAs in a fresh temporary folder, with a node, a client and a
/// coordinator certificate from the first.
class Identity : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    root_ = fs::temp_directory_path() / ("fhid" + std::to_string(getpid()) + "x" + std::to_string(++counter));
    pki_ = (root_ / "pki").string();
    other_ = (root_ / "other").string();
    ASSERT_TRUE(create_ca(pki_).ok());
    ASSERT_TRUE(create_ca(other_).ok());
    ASSERT_TRUE(issue_certificate(pki_, "node-a", cert_role::node).ok());
    ASSERT_TRUE(issue_certificate(pki_, "alice", cert_role::client).ok());
    ASSERT_TRUE(issue_certificate(pki_, "coord", cert_role::coordinator).ok());
    ASSERT_TRUE(issue_certificate(other_, "node-a", cert_role::node).ok());
  }

  void TearDown() override { fs::remove_all(root_); }

  std::string file(const std::string& dir, const std::string& name) const { return (fs::path(dir) / name).string(); }
  std::string ca() const { return file(pki_, "ca.crt"); }

  std::string pem(const std::string& dir, const std::string& name) const {
    auto r = read_certificate(file(dir, name + ".crt"));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? *r : std::string{};
  }

  std::string sign(const std::string& dir, const std::string& name, const std::string& challenge) const {
    auto r = sign_challenge(file(dir, name + ".key"), challenge);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? *r : std::string{};
  }

  static std::string refusal(const result<unit, std::string>& r) { return r.ok() ? "(accepted)" : r.error(); }

  fs::path root_;
  std::string pki_;
  std::string other_;
};

/// Standard output of a shell command (the openssl CLI as an independent check).
std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;)
      out.append(buf, n);
    pclose(p);
  }
  return out;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

}  // namespace

TEST_F(Identity, IssuedNodeCertificateWithItsSignatureIsAccepted) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge,
                        sign(pki_, "node-a", challenge));
  EXPECT_TRUE(r.ok()) << refusal(r);
}

TEST_F(Identity, ClientCertificateCannotProveANode) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "alice"), cert_role::node, "alice", challenge, sign(pki_, "alice", challenge));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("role is 'client'"), std::string::npos) << r.error();
}

TEST_F(Identity, NodeCertificateCannotClaimAnotherName) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-b", challenge,
                        sign(pki_, "node-a", challenge));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("for 'node-a', not 'node-b'"), std::string::npos) << r.error();
}

TEST_F(Identity, CertificateOfAnotherCaIsRefused) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(other_, "node-a"), cert_role::node, "node-a", challenge,
                        sign(other_, "node-a", challenge));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("not accepted by the cluster CA"), std::string::npos) << r.error();
}

TEST_F(Identity, SignatureByAnotherKeyIsRefused) {
  // The other CA's node-a key signs, presenting this CA's node-a certificate:
  // a stolen certificate without its key proves nothing.
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge,
                        sign(other_, "node-a", challenge));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("signature does not match"), std::string::npos) << r.error();
}

TEST_F(Identity, SignatureOverAnotherChallengeIsRefused) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge,
                        sign(pki_, "node-a", random_token()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("signature does not match"), std::string::npos) << r.error();
}

TEST_F(Identity, TamperedOrMalformedSignatureIsRefused) {
  const auto challenge = random_token();
  auto sig = sign(pki_, "node-a", challenge);
  sig[sig.size() / 2] = sig[sig.size() / 2] == '0' ? '1' : '0';
  auto flipped = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge, sig);
  EXPECT_FALSE(flipped.ok());
  auto not_hex = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge, "xyz!");
  ASSERT_FALSE(not_hex.ok());
  EXPECT_NE(not_hex.error().find("not a hex"), std::string::npos) << not_hex.error();
  auto empty = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", challenge, "");
  EXPECT_FALSE(empty.ok());
}

TEST_F(Identity, GarbageOrMissingCertificateIsRefused) {
  const auto challenge = random_token();
  const auto sig = sign(pki_, "node-a", challenge);
  for (const std::string& bad : {std::string{}, std::string{"hello"},
                                std::string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
                                std::string(100000, 'A')}) {
    auto r = verify_proof(ca(), bad, cert_role::node, "node-a", challenge, sig);
    EXPECT_FALSE(r.ok()) << "accepted " << bad.substr(0, 40);
  }
  auto r = verify_proof(ca(), "hello", cert_role::node, "node-a", challenge, sig);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("no PEM certificate"), std::string::npos) << r.error();
}

TEST_F(Identity, CaCertificateItselfIsNotANodeIdentity) {
  const auto challenge = random_token();
  auto r = verify_proof(ca(), pem(pki_, "ca"), cert_role::node, "framehive cluster CA", challenge,
                        sign(pki_, "ca", challenge));
  EXPECT_FALSE(r.ok());
}

TEST_F(Identity, EmptyChallengeIsRefused) {
  auto r = verify_proof(ca(), pem(pki_, "node-a"), cert_role::node, "node-a", "", sign(pki_, "node-a", ""));
  EXPECT_FALSE(r.ok());
}

TEST_F(Identity, KeyFilesAreOwnerOnly) {
  EXPECT_EQ(mode_of(file(pki_, "ca.key")), 0600u);
  EXPECT_EQ(mode_of(file(pki_, "node-a.key")), 0600u);
  EXPECT_EQ(mode_of(file(pki_, "alice.key")), 0600u);
  EXPECT_EQ(mode_of(file(pki_, "node-a.crt")) & 0077, 0044u);  // certificates are public
}

TEST_F(Identity, CreateCaRefusesToOverwriteAnExistingCa) {
  const auto before = pem(pki_, "ca");
  auto r = create_ca(pki_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("already exists"), std::string::npos) << r.error();
  EXPECT_EQ(pem(pki_, "ca"), before);
}

TEST_F(Identity, IssueRefusesMissingCaBadNamesAndOverwrites) {
  auto no_ca = issue_certificate((root_ / "empty").string(), "n1", cert_role::node);
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.error().find("no cluster CA"), std::string::npos) << no_ca.error();
  for (const std::string& bad :
       {std::string{}, std::string{"../evil"}, std::string{"a/b"}, std::string{"ca"}, std::string{"-x"},
        std::string(65, 'n'), std::string{"sp ace"}})
    EXPECT_FALSE(issue_certificate(pki_, bad, cert_role::node).ok()) << "accepted name '" << bad << "'";
  auto again = issue_certificate(pki_, "node-a", cert_role::node);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("already exists"), std::string::npos) << again.error();
}

TEST_F(Identity, RolesRoundTripAndUnknownRoleIsRejected) {
  for (auto r : {cert_role::coordinator, cert_role::node, cert_role::client}) {
    cert_role back = cert_role::client;
    ASSERT_TRUE(from_string(to_string(r), back));
    EXPECT_EQ(back, r);
  }
  cert_role out = cert_role::node;
  EXPECT_FALSE(from_string("admin", out));
  EXPECT_FALSE(from_string("Node", out));
}

TEST_F(Identity, TlsFilesCheckNamesTheProblem) {
  EXPECT_TRUE(tls_files{}.check().ok());  // TLS off
  tls_files good{ca(), file(pki_, "coord.crt"), file(pki_, "coord.key")};
  EXPECT_TRUE(good.check().ok()) << refusal(good.check());

  tls_files partial{ca(), file(pki_, "coord.crt"), ""};
  EXPECT_NE(refusal(partial.check()).find("--tls.key is missing"), std::string::npos) << refusal(partial.check());
  tls_files missing{ca(), file(pki_, "nope.crt"), file(pki_, "coord.key")};
  EXPECT_NE(refusal(missing.check()).find("nope.crt"), std::string::npos) << refusal(missing.check());
  tls_files wrong_key{ca(), file(pki_, "coord.crt"), file(pki_, "alice.key")};
  EXPECT_NE(refusal(wrong_key.check()).find("does not belong"), std::string::npos) << refusal(wrong_key.check());
  tls_files wrong_ca{file(other_, "ca.crt"), file(pki_, "coord.crt"), file(pki_, "coord.key")};
  EXPECT_NE(refusal(wrong_ca.check()).find("not accepted by the cluster CA"), std::string::npos)
      << refusal(wrong_ca.check());
  tls_files key_as_ca{file(pki_, "coord.key"), file(pki_, "coord.crt"), file(pki_, "coord.key")};
  EXPECT_NE(refusal(key_as_ca.check()).find("--tls.ca"), std::string::npos) << refusal(key_as_ca.check());
}

TEST_F(Identity, CertificatesCarryNameRoleAndLoopbackAltNames) {
  auto r = run("openssl x509 -noout -subject -ext subjectAltName,basicConstraints -in " + file(pki_, "node-a.crt"));
  EXPECT_NE(r.find("OU = node"), std::string::npos) << r;
  EXPECT_NE(r.find("CN = node-a"), std::string::npos) << r;
  EXPECT_NE(r.find("DNS:node-a"), std::string::npos) << r;
  EXPECT_NE(r.find("DNS:localhost"), std::string::npos) << r;
  EXPECT_NE(r.find("IP Address:127.0.0.1"), std::string::npos) << r;
  EXPECT_NE(r.find("CA:FALSE"), std::string::npos) << r;
  auto v = run("openssl verify -CAfile " + ca() + " " + file(pki_, "node-a.crt") + " 2>&1");
  EXPECT_NE(v.find(": OK"), std::string::npos) << v;
}

TEST(RandomToken, IsHexOfTheRequestedLengthAndDiffers) {
  auto a = random_token(16), b = random_token(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  EXPECT_EQ(random_token().size(), 64u);
}
