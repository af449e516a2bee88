"""run phases: queued, preparing, starting, running, ended (jobs.status)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phase', sa.String(length=16), server_default='queued', nullable=False))
        batch_op.create_index(batch_op.f('ix_runs_phase'), ['phase'], unique=False)
    # a Running run was admitted by an older version: its command runs (or it is being prepared,
    # which an older version also showed as Running; the engine's re-attach sorts that out)
    op.execute("UPDATE runs SET phase = 'running' WHERE status = 'Running'")
    op.execute("UPDATE runs SET phase = 'ended' WHERE status NOT IN ('Pending', 'Running')")


def downgrade():
    op.execute("UPDATE runs SET status = 'Running' WHERE status = 'Pending' AND phase IN ('preparing', 'starting')")
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_phase'))
        batch_op.drop_column('phase')
