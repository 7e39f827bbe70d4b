# The data path without a shared disk (issue 12): upload, fetch, artifacts,
# with the real binaries on loopback, and a client whose upload breaks off.
add_executable(broken_upload cluster/broken_upload.cpp)
target_link_libraries(broken_upload PRIVATE framehive::actors framehive::common)
target_include_directories(broken_upload PRIVATE ${PROJECT_SOURCE_DIR})
set_target_properties(broken_upload PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

framehive_add_test(data_path_test
  SOURCES cluster/data_path_test.cpp
  LIBS framehive::common framehive::identity nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin" FRAMEHIVE_BROKEN_UPLOAD="$<TARGET_FILE:broken_upload>"
  TIMEOUT 600)
add_dependencies(data_path_test broken_upload framehive framehive-coordinator framehive-node framehive-worker)
