# Prometheus metrics (issue 14 item 1): the module's logic, and with real
# processes both /metrics endpoints during and after a paced job.
framehive_add_test(metrics_test
  SOURCES common/metrics_test.cpp
  LIBS framehive::metrics framehive::common
  TIMEOUT 60)

framehive_add_test(metrics_cluster_test
  SOURCES cluster/metrics_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(metrics_cluster_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(metrics_cluster_test framehive framehive-coordinator framehive-node framehive-worker)
