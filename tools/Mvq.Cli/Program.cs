// Entry point of the `mvq` command-line tool. (Subcommands are added under Commands/.)
return 0;
