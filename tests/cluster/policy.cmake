# The node's input policy and worker port with real processes (issue 11).
add_executable(forged_hello cluster/forged_hello.cpp)
target_link_libraries(forged_hello PRIVATE framehive::actors)
set_target_properties(forged_hello PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

framehive_add_test(policy_test
  SOURCES cluster/policy_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin" FRAMEHIVE_FORGED_HELLO="$<TARGET_FILE:forged_hello>"
  TIMEOUT 300)
add_dependencies(policy_test framehive framehive-coordinator framehive-node framehive-worker forged_hello)
