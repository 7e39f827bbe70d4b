# Ring header validation (issue 11): corrupted headers of real rings in
# /dev/shm, read in this process and in separate reader processes (ring_peer,
# defined with frame_ring_test in tests/CMakeLists.txt).
framehive_add_test(ring_header_test
  SOURCES shm/ring_header_test.cpp
  LIBS framehive::shm framehive::common
  DEFINITIONS FRAMEHIVE_RING_PEER="$<TARGET_FILE:ring_peer>"
  TIMEOUT 120)
add_dependencies(ring_header_test ring_peer)

# The consumer's spin-before-sleep decision (issue 15), and a spinning consumer.
framehive_add_test(spin_policy_test
  SOURCES shm/spin_policy_test.cpp
  LIBS framehive::shm framehive::common)
