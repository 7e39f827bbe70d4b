# The coordinator's web view (issue 14 items 2 and 3), with real processes: the
# page loaded in headless Chromium during a paced job, the JSON API, the
# refusals (an address beyond loopback, a port taken), and both /metrics.
framehive_add_test(web_view_test
  SOURCES cluster/web_view_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(web_view_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(web_view_test framehive framehive-coordinator framehive-node framehive-worker)

# The view against a coordinator actor that never answers or is gone (no processes).
framehive_add_test(web_view_unit_test
  SOURCES coordinator/web_view_test.cpp
  LIBS framehive::web_view framehive::common nlohmann_json::nlohmann_json
  TIMEOUT 60)
target_include_directories(web_view_unit_test PRIVATE ${PROJECT_SOURCE_DIR})
