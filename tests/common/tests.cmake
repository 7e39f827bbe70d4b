# Unit tests of common/ (no processes, no sleeps).
framehive_add_test(backoff_test
  SOURCES common/backoff_test.cpp
  LIBS framehive::common
  TIMEOUT 30)

framehive_add_test(identity_test
  SOURCES common/identity_test.cpp
  LIBS framehive::identity
  TIMEOUT 60)

framehive_add_test(sampling_test
  SOURCES common/sampling_test.cpp
  LIBS framehive::common
  TIMEOUT 30)

framehive_add_test(logging_test
  SOURCES common/logging_test.cpp
  LIBS framehive::logging nlohmann_json::nlohmann_json
  TIMEOUT 30)
