# Unit tests of the node's plain classes: manual clock, no processes, no sleeps.
framehive_add_test(video_supervisor_test
  SOURCES node/video_supervisor_test.cpp
  LIBS framehive::node
  TIMEOUT 30)

framehive_add_test(worker_pool_test
  SOURCES node/worker_pool_test.cpp
  LIBS framehive::node
  TIMEOUT 30)

framehive_add_test(input_policy_test
  SOURCES node/input_policy_test.cpp
  LIBS framehive::node
  TIMEOUT 30)

framehive_add_test(blob_cache_test
  SOURCES node/blob_cache_test.cpp
  LIBS framehive::node framehive::identity
  TIMEOUT 30)

framehive_add_test(artifact_sender_test
  SOURCES node/artifact_sender_test.cpp
  LIBS framehive::node
  TIMEOUT 30)
