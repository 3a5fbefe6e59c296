from flowledger.cli import main

raise SystemExit(main())
