"""The CIFAR-10 binary version's layout: archive and member names, record sizes, classes.

Records are 1 label byte then 3072 pixel bytes (R, G, B planes of 32x32, row-major). This
module imports nothing, so config and preprocessing can use the numbers without the data code.
"""

ARCHIVE_NAME = "cifar-10-binary.tar.gz"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"{MEMBER_DIR}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = f"{MEMBER_DIR}/test_batch.bin"
META_MEMBER = f"{MEMBER_DIR}/batches.meta.txt"
IMAGE_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + IMAGE_BYTES
NUM_CLASSES = 10
