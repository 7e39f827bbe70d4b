# Live sources (issue 12 item 4): an endless http stream served by the ffmpeg
# CLI on loopback runs through the ring until it ends or is cancelled.
framehive_add_test(live_test
  SOURCES cluster/live_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
add_dependencies(live_test framehive framehive-coordinator framehive-node framehive-worker)
