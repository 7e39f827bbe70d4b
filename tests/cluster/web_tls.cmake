# The web view beyond loopback (issue 14): HTTPS with the cluster's
# certificates and client certificates of the cluster CA only, tested with
# the real coordinator and node in a network namespace of the test's own
# (an address on a veth pair that exists nowhere else). Needs root
# and `ip netns`; skips, saying why, without them.
framehive_add_test(web_tls_test
  SOURCES cluster/web_tls_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(web_tls_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(web_tls_test framehive framehive-coordinator framehive-node framehive-worker)
