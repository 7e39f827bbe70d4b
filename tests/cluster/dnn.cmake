# A DNN model shipped with the job (issue 13 item 5): real processes, models
# the test writes itself (tests/analysis/tiny_models.hpp).
framehive_add_test(dnn_cluster_test
  SOURCES cluster/dnn_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(dnn_cluster_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(dnn_cluster_test framehive framehive-coordinator framehive-node framehive-worker)
