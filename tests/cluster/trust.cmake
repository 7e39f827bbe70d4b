# Identity from the connection and limits, with the real binaries and a rogue
# peer that speaks the real protocol (issue 11).
add_executable(rogue_peer cluster/rogue_peer.cpp)
target_link_libraries(rogue_peer PRIVATE framehive::actors framehive::catalog)
target_include_directories(rogue_peer PRIVATE ${PROJECT_SOURCE_DIR})
set_target_properties(rogue_peer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

framehive_add_test(trust_test
  SOURCES cluster/trust_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin" FRAMEHIVE_ROGUE_PEER="$<TARGET_FILE:rogue_peer>"
  TIMEOUT 300)
target_include_directories(trust_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(trust_test rogue_peer framehive framehive-coordinator framehive-node framehive-worker)
