"""What svmtrain writes and reads back: atomic files, JSON/CSV records, run directories, plots."""
