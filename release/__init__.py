"""Release records, config vars, rollback and launching (the post-receive stage)."""
