"""notebooks: lifetime and hub server name of notebook runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_in', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('server_name', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('server_name')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('expires_in')
